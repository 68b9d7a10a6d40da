"""The in-process predictor: @champion (and @challenger) loaded from the model registry, inputs
checked against the model, windows looked up in the warehouse, the challenger scored in shadow
(or, under an A/B split, answering a share of requests), every answer logged.

The BentoML service wraps one of these; backtests use it directly. Both speak the schemas of
:mod:`serving.schemas`, so a strategy does not know which one it talks to. A predictor is three
parts: the models it serves (:mod:`serving.model_set`), who answers a request
(:mod:`serving.router`) and the explanations (:mod:`serving.explainer`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from registry.loaded import LoadedModel, limit_threads
from registry.model_registry import ModelRegistry
from registry.settings import TrackingSettings
from serving.explainer import Explainer
from serving.model_set import ModelSet, card
from serving.prediction_log import PredictionLog
from serving.router import Prepared, Router
from serving.schemas import (
    ExplainRequest,
    ExplainResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    Role,
)
from serving.settings import ServingSettings


class Predicting(Protocol):
    """What the trading runtime needs from a model: the HTTP client and this class both do it."""

    def predict(self, request: PredictRequest) -> PredictResponse: ...

    def explain(self, request: ExplainRequest) -> ExplainResponse: ...

    def info(self) -> ModelInfo: ...


class Predictor:
    """Answers predict / explain / info requests from the registered champion (of the MLflow
    store of ``tracking``)."""

    def __init__(
        self,
        url: str,
        settings: ServingSettings,
        prediction_log: PredictionLog | None = None,
        *,
        tracking: TrackingSettings,
    ) -> None:
        models = ModelSet(url, ModelRegistry(url, tracking), settings.serve_model_threads)
        models.reload()
        self._compose(url, settings, models, prediction_log)

    def _compose(
        self,
        url: str,
        settings: ServingSettings,
        models: ModelSet,
        prediction_log: PredictionLog | None,
    ) -> None:
        self.url, self.settings, self.models = url, settings, models
        self.router = Router(settings, models, prediction_log)
        self.explainer = Explainer(models)

    @classmethod
    def pinned(
        cls,
        url: str,
        name: str,
        version: str,
        settings: ServingSettings,
        tracking: TrackingSettings,
    ) -> Predictor:
        """One registered version answering as the champion, whatever holds @champion now: a
        walk-forward trades each window with the version that was champion then."""
        models = ModelSet(url, ModelRegistry(url, tracking), settings.serve_model_threads)
        models.pin_version(name, str(version))
        predictor = cls.__new__(cls)
        predictor._compose(url, settings, models, None)
        return predictor

    @classmethod
    def of(cls, url: str, model: LoadedModel, settings: ServingSettings) -> Predictor:
        """A model fitted in this process (never registered) answering as the champion, so a
        walk-forward's per-window fits trade through the same interface as a registered one;
        no MLflow is touched."""
        limit_threads(model.impl.bundle, settings.serve_model_threads)
        models = ModelSet(url, None, settings.serve_model_threads)
        models.pin(model)
        predictor = cls.__new__(cls)
        predictor._compose(url, settings, models, None)
        return predictor

    # --- models ---------------------------------------------------------------------------

    @property
    def champion(self) -> LoadedModel | None:
        return self.models.current.champion

    @property
    def challenger(self) -> LoadedModel | None:
        return self.models.current.challenger

    @property
    def promotion(self) -> dict | None:
        return self.models.current.promotion

    def reload(self) -> dict[str, str | None]:
        """Load whatever now holds @champion / @challenger and swap them in one step (a pinned
        predictor keeps its model). Returns the versions served."""
        return self.models.reload()

    def loaded(self) -> dict[str, str | None]:
        """The versions being served, by role."""
        return self.models.loaded()

    def info(self) -> ModelInfo:
        now = self.models.current
        return ModelInfo(
            champion=card(now.champion),
            challenger=card(now.challenger) if now.challenger else None,
            ab_share=self.settings.serve_ab_share,
            batching=self.settings.serve_batching,
            promotion=now.promotion,
        )

    # --- predict / explain ----------------------------------------------------------------

    def prepare(self, request: PredictRequest, role: Role | None = None) -> Prepared:
        """Checked windows and who answers them (see :meth:`serving.router.Router.prepare`)."""
        return self.router.prepare(request, role)

    def respond(
        self, request: PredictRequest, prepared: Prepared, predictions: np.ndarray
    ) -> PredictResponse:
        """The response for ``prepared``'s forecasts; logs them and starts the shadow."""
        return self.router.respond(request, prepared, predictions)

    def predict(self, request: PredictRequest, role: Role | None = None) -> PredictResponse:
        prepared = self.router.prepare(request, role)
        predictions = prepared.serve.predict(prepared.windows, request.symbols)
        return self.router.respond(request, prepared, predictions)

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        """SHAP attributions of the champion's forecast for one window."""
        return self.explainer.explain(request)

    def close(self) -> None:
        self.router.close()
