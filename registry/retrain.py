"""Per walk-forward window, an XGBoost fitted on the window's training rows only
(``training.walkforward_fit``), loaded like a registered version but never registered: the
registry is where a model crosses from training into serving."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time

from quant.splits import WindowDates
from registry.loaded import LoadedModel
from training.data import load_training_data
from training.walkforward_fit import FitParams, WindowFit, fit_window


class WindowFits:
    """Loads the symbols' training set once; ``fit`` fits one window's model."""

    def __init__(self, url: str, symbols: Sequence[str], horizon: int, **fit: float) -> None:
        """``fit``: the fields of ``training.walkforward_fit.FitParams``."""
        self.horizon, self.params = horizon, FitParams(**fit)
        self.data = load_training_data(url, list(symbols))
        if not len(self.data):
            raise LookupError("features.training_set is empty: run `qtis features build` first")

    def fit(self, window: WindowDates) -> tuple[LoadedModel, WindowFit]:
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
        return loaded, fit
