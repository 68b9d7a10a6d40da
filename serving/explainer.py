"""SHAP attributions of the champion's forecast for one window, sent or looked up by symbol in
the champion's columns; the background windows a network's explainer needs are sampled once per
model version."""

from __future__ import annotations

import numpy as np

from registry.loaded import LoadedModel, NotExplainable
from serving.errors import RequestError
from serving.model_set import ModelSet
from serving.router import check_windows
from serving.schemas import ExplainRequest, ExplainResponse, FeatureAttribution
from serving.windows import WindowSource


class Explainer:
    def __init__(self, models: ModelSet) -> None:
        self.models = models
        self._background: dict[tuple[str, str], np.ndarray] = {}

    def _window(
        self, request: ExplainRequest, model: LoadedModel, windows: WindowSource
    ) -> np.ndarray:
        if request.window is not None:
            return check_windows([request.window], "window", model)
        try:
            window, _ = windows.latest([request.symbol], request.as_of, model.window)
        except LookupError as exc:
            field = exc.args[1] if len(exc.args) > 1 else "symbol"
            raise RequestError(exc.args[0], field.rstrip("s"), 404) from exc  # no such window
        return window

    def _background_for(self, model: LoadedModel, windows: WindowSource) -> np.ndarray:
        key = (model.name, model.version)
        if key not in self._background:
            self._background[key] = windows.sample(model.window, n=50)
        return self._background[key]

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        """SHAP attributions of the champion's forecast for one window."""
        now = self.models.current
        model, windows = now.champion, now.champion_windows
        window = self._window(request, model, windows)
        try:
            found = model.explain(
                window, lambda: self._background_for(model, windows), request.symbol
            )
        except NotExplainable as exc:
            raise RequestError(str(exc), None, 409) from exc
        values = found.values[0]  # (features, horizons)
        order = np.argsort(-np.abs(values).sum(axis=1))
        return ExplainResponse(
            model=model.name,
            version=model.version,
            method=found.method,
            horizons=list(model.horizons),
            base_values=found.base_values.tolist(),
            prediction=model.predict(window, [request.symbol])[0].astype(float).tolist(),
            attributions=[
                FeatureAttribution(
                    feature=model.features[i],
                    value=float(found.inputs[0, i]),
                    shap=values[i].tolist(),
                )
                for i in order
            ],
        )
