"""The settings of the MLflow store the registry opens. :class:`TrackingSettings` is training's
(training writes the runs), named here too so that serving and the trading runtime, which may
not import training, can take it from their entry points and pass it to the registry."""

from training.settings import TrackingSettings

__all__ = ["TrackingSettings"]
