"""A persistent Dagster instance under QTIS_HOME, shared by `qtis demo` and `qtis ui`."""

from __future__ import annotations

import os
from pathlib import Path

from warehouse.settings import WarehouseSettings

DAGSTER_YAML = """\
telemetry:
  enabled: false
"""


def dagster_home(settings: WarehouseSettings) -> Path:
    """``DAGSTER_HOME`` if set, else ``<QTIS_HOME>/dagster``; created with a minimal config."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
