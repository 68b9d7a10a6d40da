"""The ``retrain`` walk-forward source: per window an XGBoost fitted on the window's training rows
only (``registry.retrain``), served in process like a registered model - nothing goes to
MLflow."""

from __future__ import annotations

from collections.abc import Sequence

from quant.splits import WindowDates
from registry.retrain import WindowFits
from serving.predictor import Predictor
from serving.settings import ServingSettings
from serving.window_model import WindowModel


class RetrainSource:
    """``model`` fits a window's model and serves it through an in-process predictor."""

    def __init__(
        self,
        url: str,
        symbols: Sequence[str],
        horizon: int,
        serving: ServingSettings,
        **fit: float,
    ) -> None:
        self.url, self.fits = url, WindowFits(url, symbols, horizon, **fit)
        self.serving = serving

    def model(self, window: WindowDates) -> WindowModel:
        loaded, fit = self.fits.fit(window)
        predictor = Predictor.of(self.url, loaded, self.serving)
        label = f"xgboost fit on {window.name}"
        return WindowModel(predictor, label, fit.trained_through, fit.label_end, fit.rows)
