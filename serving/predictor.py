"""The in-process predictor: @champion (and @challenger) loaded from the MLflow registry, inputs
checked against the model, windows looked up in the warehouse, the challenger scored in shadow
(or, under an A/B split, answering a share of requests), every answer logged.

The BentoML service wraps one of these; backtests use it directly. Both speak the schemas of
:mod:`serving.schemas`, so a strategy does not know which one it talks to.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import InputError, MissingStep
from serving.prediction_log import PredictionLog
from serving.schemas import (
    ExplainRequest,
    ExplainResponse,
    FeatureAttribution,
    ModelCard,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    Role,
)
from serving.settings import ServingSettings
from serving.windows import WindowSource

log = logging.getLogger("qtis.serving")


MAX_SHADOW_PENDING = 1000  # shadow scoring that falls this far behind is skipped, not queued


class RequestError(ValueError, InputError):
    """A request the service cannot answer, with the field at fault: a 4xx, never a 500."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


class NoChampion(RuntimeError, MissingStep):
    """No loadable model holds @champion: the service does not start."""


class Predicting(Protocol):
    """What the trading runtime needs from a model: the HTTP client and this class both do it."""

    def predict(self, request: PredictRequest) -> PredictResponse: ...

    def explain(self, request: ExplainRequest) -> ExplainResponse: ...

    def info(self) -> ModelInfo: ...


@dataclass
class LoadedModel:
    role: str
    name: str
    version: str
    run_id: str
    impl: Any  # training.tracking.QtisPyfunc
    window: int
    features: tuple[str, ...]
    horizons: tuple[int, ...]
    trained_through: datetime | None = None
    label_end: datetime | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """(n, bars >= window, features) -> (n, horizons)."""
        if self.impl.input_kind == "features":
            return self.impl.bundle.predict_features(windows[:, -1, :])
        return self.impl.bundle.predict_windows(windows[:, -self.window :, :])

    def card(self) -> ModelCard:
        return ModelCard(
            role=self.role,
            model=self.name,
            version=self.version,
            window=self.window,
            input_kind=self.impl.input_kind,
            features=list(self.features),
            horizons=list(self.horizons),
            run_id=self.run_id,
            loaded_at=self.loaded_at,
            trained_through=self.trained_through,
            label_end=self.label_end,
        )


def limit_threads(bundle: Any, threads: int) -> None:
    """Run XGBoost (here or in an ensemble) on ``threads`` threads: idle OpenMP workers spin, and
    on a small machine they starve the threads that parse the next requests. (The service sizes
    the networks' ONNX Runtime sessions the same way, through torch's thread count.)"""
    parts = [bundle, *getattr(bundle, "members", {}).values()]
    for part in parts:
        booster = getattr(part, "model", None)
        if booster is not None and hasattr(booster, "set_params"):
            booster.set_params(n_jobs=threads)


def load_model(client, role: str, name: str, version: str, threads: int = 1) -> LoadedModel:
    """One registered version, with what a request must look like for it."""
    import json

    import mlflow
    from mlflow.artifacts import download_artifacts

    from transforms.spec import default_spec

    found = client.get_model_version(name, version)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    impl = pyfunc.unwrap_python_model().impl
    limit_threads(impl.bundle, threads)
    example = np.asarray(pyfunc.input_example)
    window = int(example.shape[1]) if impl.input_kind == "windows" else 1
    names = json.loads(
        Path(download_artifacts(run_id=found.run_id, artifact_path="features.json")).read_text()
    )["features"]
    tags = client.get_run(found.run_id).data.tags
    trained_through, labels = (
        datetime.fromisoformat(tags[key]).replace(tzinfo=UTC) if tags.get(key) else None
        for key in ("trained_through", "label_end")
    )
    return LoadedModel(
        role, name, str(version), found.run_id, impl, window, tuple(names),
        default_spec().horizons, trained_through, labels,
    )  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    windows: np.ndarray  # (n, bars, features), checked
    as_of: list[datetime] | None  # bar each looked-up window ends at
    serve: LoadedModel
    shadow: LoadedModel | None
    started: float  # perf_counter when the request arrived


class Predictor:
    """Answers predict / explain / info requests from the registered champion."""

    def __init__(
        self,
        url: str,
        settings: ServingSettings | None = None,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self._setup(url, settings, prediction_log)
        self.client = self._registry()
        self.reload()
        self.windows = WindowSource(url, self.champion.features)

    def _setup(
        self, url: str, settings: ServingSettings | None, prediction_log: PredictionLog | None
    ) -> None:
        self.url, self.settings = url, settings or ServingSettings()
        self.client = None
        self.champion: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self.promotion: dict | None = None
        self.fixed = False  # a pinned model: reload() leaves it, whatever the aliases say
        self._lock = threading.Lock()
        self._split = random.Random(self.settings.serve_seed)
        self._shadow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qtis-shadow")
        self._shadow_pending, self._lock_pending = 0, threading.Lock()
        self.log = prediction_log
        self._background: dict[tuple[str, str], np.ndarray] = {}

    def _registry(self):
        from mlflow.tracking import MlflowClient

        from training import tracking

        tracking.configure(self.url)
        return MlflowClient()

    def _pin(self, model: LoadedModel) -> Predictor:
        self.champion, self.fixed = model, True
        self.windows = WindowSource(self.url, model.features)
        return self

    @classmethod
    def pinned(
        cls, url: str, name: str, version: str, settings: ServingSettings | None = None
    ) -> Predictor:
        """One registered version answering as the champion, whatever holds @champion now: a
        walk-forward trades each window with the version that was champion then."""
        predictor = cls.__new__(cls)
        predictor._setup(url, settings, None)
        predictor.client = predictor._registry()
        threads = predictor.settings.serve_model_threads
        try:
            model = load_model(predictor.client, "champion", name, str(version), threads)
        except Exception as exc:
            raise NoChampion(f"{name} v{version} cannot be loaded: {exc}") from exc
        predictor.promotion = predictor._promotion(name, str(version), model.run_id)
        return predictor._pin(model)

    @classmethod
    def of(cls, url: str, model: LoadedModel, settings: ServingSettings | None = None) -> Predictor:
        """A model fitted in this process (never registered) answering as the champion, so a
        walk-forward's per-window fits trade through the same interface as a registered one;
        no MLflow is touched."""
        predictor = cls.__new__(cls)
        predictor._setup(url, settings, None)
        limit_threads(model.impl.bundle, predictor.settings.serve_model_threads)
        return predictor._pin(model)

    # --- models ---------------------------------------------------------------------------

    def reload(self) -> dict[str, str | None]:
        """Load whatever now holds @champion / @challenger, then swap: requests in flight finish
        on the models they started with. Returns the (new) versions. A pinned predictor keeps
        its model."""
        from training.promotion import CHALLENGER, CHAMPION, holder

        if self.fixed:
            return self.loaded()
        with self._lock:
            champion, promotion = self.champion, self.promotion
            current = holder(self.client, CHAMPION)
            if current is None:
                if champion is None:
                    raise NoChampion(
                        "no model holds @champion: promote one first (`qtis models promote`, "
                        "or the `promotion` asset after training)"
                    )
                log.warning("@champion was removed; still serving %s", self._label(champion))
            elif champion is None or (champion.name, champion.version) != current:
                try:
                    champion = load_model(
                        self.client, "champion", *current, self.settings.serve_model_threads
                    )
                except Exception as exc:
                    if self.champion is None:
                        raise NoChampion(
                            f"the champion {current[0]} v{current[1]} cannot be loaded: {exc}"
                        ) from exc
                    raise
                promotion = self._promotion(*current, champion.run_id)
            wanted = holder(self.client, CHALLENGER)
            challenger = self.challenger
            if wanted is None:
                challenger = None
            elif challenger is None or (challenger.name, challenger.version) != wanted:
                try:
                    challenger = load_model(
                        self.client, "challenger", *wanted, self.settings.serve_model_threads
                    )
                except Exception as exc:  # a broken challenger must not stop the champion
                    log.error("challenger %s v%s not loaded: %s", *wanted, exc)
                    challenger = None
            # one swap: a reader never sees the new champion next to the old challenger (when
            # the challenger was promoted, that is the same version in both roles)
            self.champion, self.challenger, self.promotion = champion, challenger, promotion
            return self.loaded()

    def loaded(self) -> dict[str, str | None]:
        """The versions being served, by role."""
        return {"champion": self._label(self.champion), "challenger": self._label(self.challenger)}

    @staticmethod
    def _label(model: LoadedModel | None) -> str | None:
        return f"{model.name} v{model.version}" if model else None

    def _promotion(self, name: str, version: str, run_id: str) -> dict | None:
        from training.promotion import INSTALLING
        from warehouse.db import connect

        with connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "select id, decided_at, decision, reason, gates, actor from mlops.promotions"
                " where model = %s and version = %s and run_id = %s and decision = any(%s)"
                " order by id desc limit 1",
                (name, version, run_id, [*INSTALLING, "rolled_back"]),
            )
            row = cur.fetchone()
        if row is None:
            return None
        keys = ("id", "decided_at", "decision", "reason", "gates", "actor")
        return dict(zip(keys, row, strict=True))

    def info(self) -> ModelInfo:
        return ModelInfo(
            champion=self.champion.card(),
            challenger=self.challenger.card() if self.challenger else None,
            ab_share=self.settings.serve_ab_share,
            batching=self.settings.serve_batching,
            promotion=self.promotion,
        )

    # --- inputs ---------------------------------------------------------------------------

    def _bars_needed(self) -> int:
        models = [m for m in (self.champion, self.challenger) if m is not None]
        return max(m.window for m in models)

    def _check_windows(self, raw: list, field: str, model: LoadedModel | None = None) -> np.ndarray:
        try:
            windows = np.asarray(raw, dtype=np.float32)
        except ValueError as exc:
            raise RequestError(
                f"{field} must be a rectangular (windows, bars, features) array: {exc}", field
            ) from exc
        if windows.ndim != 3:
            raise RequestError(f"{field} must be (windows, bars, features) of numbers", field)
        _, bars, features = windows.shape
        model = model or self.champion
        if features != len(model.features):
            raise RequestError(
                f"{field}: each bar needs {len(model.features)} features in the order "
                f"GET /model lists, got {features}",
                field,
            )
        if bars < model.window:
            raise RequestError(
                f"{field}: {model.name} needs {model.window} bars per window, got {bars}",
                field,
            )
        if not np.isfinite(windows).all():
            raise RequestError(f"{field}: values must be finite 32-bit floats", field)
        return windows

    def _inputs(
        self, request: PredictRequest, model: LoadedModel | None = None
    ) -> tuple[np.ndarray, list[datetime] | None]:
        limit = self.settings.serve_max_windows
        count = len(request.windows if request.windows is not None else request.symbols)
        if count > limit:
            what = "windows" if request.windows is not None else "symbols"
            raise RequestError(f"{what}: {count} in one request, at most {limit}", what, 413)
        if request.windows is not None:
            return self._check_windows(request.windows, "windows", model), None
        try:
            return self.windows.latest(request.symbols, request.as_of, self._bars_needed())
        except LookupError as exc:
            raise RequestError(
                exc.args[0], exc.args[1] if len(exc.args) > 1 else "symbols"
            ) from exc

    # --- predict / explain ----------------------------------------------------------------

    def prepare(self, request: PredictRequest, role: Role | None = None) -> Prepared:
        """Checked input windows, and who answers: the champion (or, for the A/B share, the
        challenger); the other one, when loaded, scores the same windows in shadow. A ``role``
        names who answers, with no A/B draw: a backtest trading both books asks each itself."""
        champion, challenger = self.champion, self.challenger
        if role == "challenger" and challenger is None:
            raise RequestError("no model holds @challenger", "role", 409)
        asked = {"champion": champion, "challenger": challenger}.get(role)
        windows, as_of = self._inputs(request, asked)
        serve, share = asked or champion, self.settings.serve_ab_share
        if asked is None and challenger is not None and self._split.random() < share:
            serve = challenger
        shadow = challenger if serve is champion else champion
        if shadow is not None and shadow.window > windows.shape[1]:
            shadow = None  # the request carries too few bars for it
        return Prepared(windows, as_of, serve, shadow, time.perf_counter())

    def respond(
        self, request: PredictRequest, prepared: Prepared, predictions: np.ndarray
    ) -> PredictResponse:
        """The response for ``prepared``'s forecasts; logs them and starts the shadow."""
        serve = prepared.serve
        request_id = uuid.uuid4().hex
        response = PredictResponse(
            request_id=request_id,
            model=serve.name,
            version=serve.version,
            role=serve.role,
            horizons=list(serve.horizons),
            predictions=np.asarray(predictions, dtype=np.float64).tolist(),
            symbols=request.symbols,
            as_of=prepared.as_of,
        )
        latency = (time.perf_counter() - prepared.started) * 1e3
        if self.log is not None:
            self.log.add(
                request_id, serve, True, request.symbols, prepared.as_of, predictions, latency
            )
            if prepared.shadow is not None and self._shadow_pending < MAX_SHADOW_PENDING:
                with self._lock_pending:
                    self._shadow_pending += 1
                self._shadow.submit(
                    self._score_shadow, prepared.shadow, prepared.windows, request, prepared.as_of,
                    request_id,
                )  # fmt: skip
        return response

    def predict(self, request: PredictRequest, role: Role | None = None) -> PredictResponse:
        prepared = self.prepare(request, role)
        return self.respond(request, prepared, prepared.serve.predict(prepared.windows))

    def _score_shadow(self, model, windows, request, as_of, request_id) -> None:
        started = time.perf_counter()
        try:
            predictions = model.predict(windows)
        except Exception as exc:  # the shadow never hurts the answer
            log.error("shadow %s v%s failed: %s", model.name, model.version, exc)
            return
        finally:
            with self._lock_pending:
                self._shadow_pending -= 1
        latency = (time.perf_counter() - started) * 1e3
        self.log.add(request_id, model, False, request.symbols, as_of, predictions, latency)

    def explain(self, request: ExplainRequest) -> ExplainResponse:
        """SHAP attributions of the champion's forecast for one window."""
        from training.explain import explain_network, explain_tree
        from training.models.sequence import SequenceBundle
        from training.models.tabular import XGBoostModel

        model = self.champion
        if request.window is not None:
            window = self._check_windows([request.window], "window")
        else:
            try:
                window, _ = self.windows.latest([request.symbol], request.as_of, model.window)
            except LookupError as exc:
                field = exc.args[1] if len(exc.args) > 1 else "symbol"
                raise RequestError(exc.args[0], field.rstrip("s")) from exc
        bundle = model.impl.bundle
        if isinstance(bundle, XGBoostModel):
            found = explain_tree(bundle, window[:, -1, :], model.features, model.horizons)
        elif isinstance(bundle, SequenceBundle):
            background = self._background_for(model)
            found = explain_network(
                bundle, window[:, -model.window :], background, model.features, model.horizons
            )
        else:
            raise RequestError(
                f"{model.name} has no SHAP explainer (explain its members instead)", None, 409
            )
        values = found.values[0]  # (features, horizons)
        order = np.argsort(-np.abs(values).sum(axis=1))
        return ExplainResponse(
            model=model.name,
            version=model.version,
            method=found.method,
            horizons=list(model.horizons),
            base_values=found.base_values.tolist(),
            prediction=model.predict(window)[0].astype(float).tolist(),
            attributions=[
                FeatureAttribution(
                    feature=model.features[i],
                    value=float(found.inputs[0, i]),
                    shap=values[i].tolist(),
                )
                for i in order
            ],
        )

    def _background_for(self, model: LoadedModel) -> np.ndarray:
        key = (model.name, model.version)
        if key not in self._background:
            self._background[key] = self.windows.sample(model.window, n=50)
        return self._background[key]

    def close(self) -> None:
        self._shadow.shutdown(wait=True)
        if self.log is not None:
            self.log.close()
