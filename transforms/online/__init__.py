"""The online (streaming) twin of every feature of the spec, one module per feature family.

:class:`OnlineFeatureEngine` (engine.py) drives the families - recursive.py, windowed.py,
cross_asset.py, calendar.py and the GARCH filter of transforms.garch - over the shared per-symbol
state of rolling.py.
"""

from transforms.online.engine import OnlineFeatureEngine

__all__ = ["OnlineFeatureEngine"]
