"""The BentoML prediction service: `bentoml serve serving.service:QtisService` (`qtis serve`).

It loads @champion (refusing to start without one, saying why) and @challenger from the MLflow
registry, checks for new aliases every ``QTIS_SERVE_RELOAD_SECONDS`` (and on ``POST
/admin/reload``), and answers:

- ``POST /predict`` ``{"request": {"windows": [...]}}`` or ``{"request": {"symbols": [...],
  "as_of": ...}}`` -> forecasts for every horizon, with the model and version that made them;
- ``POST /explain`` -> SHAP attributions of one forecast;
- ``GET /model`` -> champion/challenger cards and the promotion decision behind the champion;
- ``POST /admin/reload``, ``POST /admin/rollback`` (admin role);
- BentoML's ``/livez``, ``/readyz``, ``/metrics`` and ``/docs`` (OpenAPI at ``/docs.json``).

Bad requests get a 4xx JSON body ``{"error": ..., "field": ...}``, never a 5xx. In front of the
routes, outermost first: authentication, roles and rate limits (:mod:`serving.auth`), the body's
type and size (:mod:`serving.guards`), ``.npy`` bodies of ``POST /predict``
(:mod:`serving.binary`), readable validation messages (:mod:`serving.errors`) and
the OpenAPI document made true to the model served (:mod:`serving.openapi`).

It binds ``QTIS_SERVE_HOST:QTIS_SERVE_PORT`` (127.0.0.1:3100) however it is started (``qtis
serve``, ``bentoml serve``, a container of the Bento), and refuses to serve an open API on any
other interface unless ``QTIS_API_OPEN`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated

import bentoml
import numpy as np
import psutil
from fastapi import FastAPI
from pydantic import Field
from starlette.responses import JSONResponse, RedirectResponse

from core.settings import check_environment
from registry.settings import TrackingSettings
from serving.auth import BearerAuth, check_exposure
from serving.batching import AdaptiveBatcher
from serving.binary import ArrayBodies
from serving.deadline import install as install_deadline
from serving.errors import NoChampion, RequestError, ValidationMessages
from serving.guards import BodyGuard
from serving.model_set import settle
from serving.openapi import ApiDocument, Shapes
from serving.prediction_log import PredictionLog
from serving.predictor import Predictor
from serving.probe import serving_probe
from serving.schemas import (
    ExplainRequest,
    ExplainResponse,
    ModelInfo,
    PredictRequest,
    PredictResponse,
)
from serving.settings import ServingSettings
from warehouse.db import database_url
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

log = logging.getLogger("qtis.serving")
# the Bento's entry point: an unknown QTIS_ key stops it here, then the settings are built once
check_environment()
SETTINGS = ServingSettings()
WAREHOUSE = WarehouseSettings()
TRACKING = TrackingSettings()

PREDICTIONS = bentoml.metrics.Counter(
    name="qtis_predictions",
    documentation="windows answered, by the role and version of the model that answered",
    labelnames=["role", "model", "version"],
)
REJECTED = bentoml.metrics.Counter(
    name="qtis_rejected_requests",
    documentation="requests answered with a 4xx, by endpoint and status",
    labelnames=["endpoint", "status"],
)
BATCH_WINDOWS = bentoml.metrics.Histogram(
    name="qtis_batch_windows",
    documentation="windows per model call (adaptive batching merges requests)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
MODEL_VERSION = bentoml.metrics.Gauge(
    name="qtis_model_version",
    documentation="registered version being served, by role and model",
    labelnames=["role", "model"],
)

# BentoML records a request's OpenTelemetry spans even when no exporter takes them; for
# /predict they were half of an .npy request's CPU (docs/serving.md), so they are opt-in there
TRACING = {} if SETTINGS.serve_trace_predict else {"tracing": {"excluded_urls": ["/predict$"]}}
pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
install_deadline()  # traffic.timeout's 504, without BentoML's timer kept per request


def _rejected(endpoint: str, exc: RequestError) -> JSONResponse:
    REJECTED.labels(endpoint=endpoint, status=str(exc.status)).inc()
    headers = {"retry-after": "1"} if exc.status == 429 else None
    return JSONResponse(
        {"error": str(exc), "field": exc.field}, status_code=exc.status, headers=headers
    )


def listening_hosts() -> list[str]:
    """The addresses this worker accepts connections on, whoever chose them (``--host``,
    BENTOML_HOST, this service's configuration)."""
    found = psutil.Process().net_connections(kind="inet")
    return [c.laddr.ip for c in found if c.status == psutil.CONN_LISTEN]


def check_bars(windows: list | np.ndarray | None, field: str) -> None:
    """More bars than QTIS_SERVE_MAX_BARS in any window: a 413, before any is converted."""
    longest = max((len(w) for w in (windows if windows is not None else ())), default=0)
    if longest > SETTINGS.serve_max_bars:
        raise RequestError(
            f"{field}: {longest} bars in a window, at most {SETTINGS.serve_max_bars} "
            "(QTIS_SERVE_MAX_BARS)",
            field,
            413,
        )


@bentoml.asgi_app(pages, path="/")
@bentoml.service(
    workers=SETTINGS.serve_workers,
    traffic={"timeout": 30, "max_concurrency": SETTINGS.serve_max_concurrency},
    http={"host": SETTINGS.serve_host, "port": SETTINGS.serve_port},
    **TRACING,
)
class QtisService:
    def __init__(self) -> None:
        check_exposure(listening_hosts(), SETTINGS)  # before anything is loaded
        # deferred: torch (~1.5 s measured) only in the worker: `bentoml serve` imports this
        # module in its supervisor process too, which never runs a model
        import torch

        torch.set_num_threads(SETTINGS.serve_model_threads)  # ONNX Runtime sessions follow it
        url = database_url(WAREHOUSE)
        migrate(url)
        shadow_log = PredictionLog(url) if SETTINGS.serve_shadow_log else None
        try:
            self.predictor = Predictor(url, SETTINGS, shadow_log, tracking=TRACKING)
        except NoChampion as exc:
            log.error("not starting: %s", exc)
            raise
        self._publish()
        self._loaded = settle(self.predictor.loaded(), None)
        self.batcher = None
        if SETTINGS.serve_batching:
            self.batcher = AdaptiveBatcher(
                SETTINGS.serve_max_batch_size,
                BATCH_WINDOWS.observe,
                SETTINGS.serve_max_queued_windows,
            )
        self._stop = threading.Event()
        if SETTINGS.serve_reload_seconds > 0:
            threading.Thread(target=self._watch, name="qtis-alias-watch", daemon=True).start()
        log.info("serving %s", self.predictor.loaded())

    def _reloaded(self, loaded: dict) -> dict:
        self._publish()
        self._loaded = settle(loaded, self._loaded)
        return loaded

    def _publish(self) -> None:
        for model in (self.predictor.champion, self.predictor.challenger):
            if model is not None:
                MODEL_VERSION.labels(role=model.role, model=model.name).set(float(model.version))

    def _watch(self) -> None:
        while not self._stop.wait(SETTINGS.serve_reload_seconds):
            try:
                loaded = self._reloaded(self.predictor.reload())
                log.debug("aliases checked: %s", loaded)
            except Exception as exc:  # keep serving what is loaded
                log.error("alias check failed: %s", exc)

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()
        self.predictor.close()

    def __is_ready__(self) -> bool:
        return self.predictor.champion is not None

    def shapes(self) -> Shapes:
        """What /predict and /explain accept now: the OpenAPI document says the same."""
        champion = self.predictor.champion
        return Shapes(
            features=len(champion.features),
            min_bars=champion.window,
            max_bars=SETTINGS.serve_max_bars,
            max_windows=SETTINGS.serve_max_windows,
            symbols=tuple(sorted(self.predictor.models.current.windows(champion).known())),
            secured=bool(SETTINGS.api_token or SETTINGS.api_token_file),
        )

    # --- scoring --------------------------------------------------------------------------

    @bentoml.api(route="/predict")
    async def predict(self, request: PredictRequest) -> PredictResponse:
        """Forecasts of every horizon for a batch of windows, or for symbols as of a time
        (or, with an ``application/x-npy`` body, for the windows in it: :mod:`serving.binary`)."""
        try:
            return await self._predict(request)
        except RequestError as exc:
            return _rejected("predict", exc)

    async def predict_array(self, windows: np.ndarray) -> bytes:
        """The JSON answer to an ``.npy`` body's windows (raises :class:`RequestError`)."""
        # built unvalidated: the array is checked as one by the same code as JSON windows
        request = PredictRequest.model_construct(windows=windows)
        return (await self._predict(request)).model_dump_json().encode()

    async def _predict(self, request: PredictRequest) -> PredictResponse:
        predictor = self.predictor
        check_bars(request.windows, "windows")
        if request.symbols is not None:  # a warehouse read: off the event loop
            prepared = await asyncio.to_thread(predictor.prepare, request)
        else:
            prepared = predictor.prepare(request)
        if self.batcher is not None:
            predictions = await self.batcher.score(
                prepared.serve, prepared.windows, request.symbols
            )
        else:
            BATCH_WINDOWS.observe(len(prepared.windows))
            predictions = await asyncio.to_thread(
                prepared.serve.predict, prepared.windows, request.symbols
            )
        response = predictor.respond(request, prepared, predictions)
        PREDICTIONS.labels(role=response.role, model=response.model, version=response.version).inc(
            len(response.predictions)
        )
        return response

    @bentoml.api(route="/explain")
    def explain(self, request: ExplainRequest) -> ExplainResponse:
        """SHAP attributions of the champion's forecast for one window (or symbol as of)."""
        try:
            check_bars([request.window] if request.window else None, "window")
            return self.predictor.explain(request)
        except RequestError as exc:
            return _rejected("explain", exc)

    @pages.get("/docs", include_in_schema=False)
    def docs(self) -> RedirectResponse:
        """BentoML's Swagger UI is its index page; the OpenAPI document is /docs.json."""
        return RedirectResponse("/")

    @pages.get("/model", response_model=ModelInfo)
    def model(self) -> ModelInfo:
        """Champion and challenger (name, version, window, features) and the champion's
        promotion decision."""
        return self.predictor.info()

    # --- admin ----------------------------------------------------------------------------

    @bentoml.api(route="/admin/reload")
    def admin_reload(self) -> dict:
        """Load whatever holds the aliases now (admin role)."""
        return self._reloaded(self.predictor.reload())

    @bentoml.api(route="/admin/rollback")
    def admin_rollback(
        self, reason: Annotated[str, Field(max_length=500)] = "rollback through the API"
    ) -> dict:
        """Give @champion back to the previous champion and serve it (admin role)."""
        # deferred: registry.aliases pulls training (torch+lightning, ~6 s measured), needed only
        # for a rollback
        from registry.aliases import rollback

        url = self.predictor.url
        try:
            # the target must load and answer first; its latency is not judged here
            probe = serving_probe(url, samples=5, tracking=TRACKING)
            decision = rollback(url, probe, reason, actor="api", tracking=TRACKING)
        except ValueError as exc:
            return _rejected("admin_rollback", RequestError(str(exc), None, 409))
        loaded = self._reloaded(self.predictor.reload())
        return {"decision": decision.decision, "reason": decision.reason, **loaded}


# outermost first: an unauthenticated caller is turned away before its body is read
QtisService.add_asgi_middleware(BearerAuth, settings=SETTINGS, home=WAREHOUSE.home)
QtisService.add_asgi_middleware(BodyGuard, max_bytes=SETTINGS.serve_max_body_bytes)
QtisService.add_asgi_middleware(
    ArrayBodies,
    answer=lambda: bentoml.get_current_service().predict_array,
    rejected=lambda exc: REJECTED.labels(endpoint="predict", status=str(exc.status)).inc(),
)
QtisService.add_asgi_middleware(ValidationMessages)
QtisService.add_asgi_middleware(ApiDocument, shapes=lambda: bentoml.get_current_service().shapes())
