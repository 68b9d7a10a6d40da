"""The ``retrain`` walk-forward source: per window an XGBoost fitted on the window's training rows
only (``training.walkforward_fit``), served in process like a registered model - nothing goes to
MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time

from serving.predictor import LoadedModel, Predictor
from serving.window_model import WindowModel
from training.data import load_training_data
from training.walkforward_fit import FitParams, WindowDates, fit_window


class RetrainSource:
    """Loads the symbols' training set once; ``model`` fits and serves a window's model."""

    def __init__(self, url: str, symbols: Sequence[str], horizon: int, **fit: float) -> None:
        """``fit``: the fields of ``training.walkforward_fit.FitParams``."""
        self.url, self.horizon, self.params = url, horizon, FitParams(**fit)
        self.data = load_training_data(url, list(symbols))
        if not len(self.data):
            raise LookupError("features.training_set is empty: run `qtis features build` first")

    def model(self, window: WindowDates) -> WindowModel:
        fit = fit_window(self.data, window, self.horizon, self.params)
        loaded = LoadedModel(
            "champion",
            "walkforward-xgboost",
            window.name,
            f"walkforward-{window.name}",
            fit.model,
            1,
            fit.features,
            fit.horizons,
            trained_through=datetime.combine(fit.trained_through, time.min, UTC),
            label_end=datetime.combine(fit.label_end, time.min, UTC),  # trades only after it
        )
        predictor = Predictor.of(self.url, loaded)
        label = f"xgboost fit on {window.name}"
        return WindowModel(predictor, label, fit.trained_through, fit.label_end, fit.rows)
