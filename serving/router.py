"""Who answers a predict request and who scores it in shadow: the champion, or (for the A/B
share, or when asked by role) the challenger; the other loaded model scores the same bars in the
background, each model on its own feature columns, and both answers are logged."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from registry.loaded import LoadedModel
from serving.errors import RequestError
from serving.model_set import ModelSet, Serving
from serving.prediction_log import PredictionLog
from serving.schemas import PredictRequest, PredictResponse, Role
from serving.settings import ServingSettings

log = logging.getLogger("qtis.serving")

MAX_SHADOW_PENDING = 1000  # shadow scoring that falls this far behind is skipped, not queued


@dataclass(frozen=True)
class Prepared:
    windows: np.ndarray  # (n, bars, features), checked
    as_of: list[datetime] | None  # bar each looked-up window ends at
    serve: LoadedModel
    shadow: LoadedModel | None
    shadow_windows: np.ndarray | None  # the same bars in the shadow's columns
    started: float  # perf_counter when the request arrived


def check_windows(raw: list | np.ndarray, field: str, model: LoadedModel) -> np.ndarray:
    """``raw`` as (windows, bars, features) float32 windows that ``model`` can score; windows
    of different lengths keep their last bars, as many as the shortest has. An array (an
    ``.npy`` body) is taken as it is."""
    try:
        if isinstance(raw, np.ndarray):
            with np.errstate(over="ignore"):  # past float32's range: inf, refused below
                windows = raw.astype(np.float32, copy=False)
        else:
            shortest = min((len(w) for w in raw), default=0)
            windows = np.asarray([w[len(w) - shortest :] for w in raw], dtype=np.float32)
    except ValueError as exc:
        raise RequestError(
            f"{field} must be a rectangular (windows, bars, features) array: {exc}", field
        ) from exc
    if windows.ndim != 3:
        raise RequestError(f"{field} must be (windows, bars, features) of numbers", field)
    _, bars, features = windows.shape
    if features != len(model.features):
        raise RequestError(
            f"{field}: each bar needs {len(model.features)} features in the order "
            f"GET /model lists, got {features}",
            field,
        )
    if bars < model.window:
        raise RequestError(
            f"{field}: {model.name} needs {model.window} bars per window, got {bars}", field
        )
    if not np.isfinite(windows).all():
        raise RequestError(f"{field}: values must be finite 32-bit floats", field)
    return windows


class Router:
    """Routes predict requests between the loaded models and runs the shadow scoring."""

    def __init__(
        self,
        settings: ServingSettings,
        models: ModelSet,
        prediction_log: PredictionLog | None,
    ) -> None:
        self.settings, self.models, self.log = settings, models, prediction_log
        self.split = random.Random(settings.serve_seed)
        self._shadow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qtis-shadow")
        self._shadow_pending, self._lock_pending = 0, threading.Lock()

    def _inputs(
        self, request: PredictRequest, model: LoadedModel, shadow: LoadedModel | None, now: Serving
    ) -> tuple[np.ndarray, list[datetime] | None]:
        """``model``'s checked windows: sent, or read in its columns (with enough bars for a
        ``shadow`` of the same columns to score them too)."""
        limit = self.settings.serve_max_windows
        count = len(request.windows if request.windows is not None else request.symbols)
        if count > limit:
            what = "windows" if request.windows is not None else "symbols"
            raise RequestError(f"{what}: {count} in one request, at most {limit}", what, 413)
        if request.windows is not None:
            return check_windows(request.windows, "windows", model), None
        alike = shadow is not None and shadow.features == model.features
        bars = max(model.window, shadow.window if alike else 0)
        try:
            return now.windows(model).latest(request.symbols, request.as_of, bars)
        except LookupError as exc:
            field = exc.args[1] if len(exc.args) > 1 else "symbols"
            raise RequestError(exc.args[0], field, 404) from exc  # no such window

    def _shadow_inputs(
        self, request: PredictRequest, prepared: Prepared, now: Serving
    ) -> np.ndarray | None:
        """The bars ``prepared`` answers, in the shadow's columns; None when it cannot score
        them (too few bars sent, or windows sent in other columns than it reads)."""
        shadow, windows = prepared.shadow, prepared.windows
        if shadow.features == prepared.serve.features:
            return windows if shadow.window <= windows.shape[1] else None
        if request.symbols is None:
            return None
        try:
            return now.windows(shadow).latest(request.symbols, request.as_of, shadow.window)[0]
        except LookupError:  # the shadow never hurts the answer
            return None

    def prepare(self, request: PredictRequest, role: Role | None = None) -> Prepared:
        """Checked input windows, and who answers: the champion (or, for the A/B share, the
        challenger); the other one, when loaded, scores the same bars in shadow. A ``role``
        names who answers, with no A/B draw: a backtest trading both books asks each itself."""
        now = self.models.current
        champion, challenger = now.champion, now.challenger
        if role == "challenger" and challenger is None:
            raise RequestError("no model holds @challenger", "role", 409)
        serve = {"champion": champion, "challenger": challenger}.get(role)
        if serve is None:
            draw = challenger is not None and self.split.random() < self.settings.serve_ab_share
            serve = challenger if draw else champion
        shadow = challenger if serve is champion else champion
        windows, as_of = self._inputs(request, serve, shadow, now)
        prepared = Prepared(windows, as_of, serve, shadow, None, time.perf_counter())
        if shadow is None:
            return prepared
        shadowed = self._shadow_inputs(request, prepared, now)
        kept = shadow if shadowed is not None else None
        return replace(prepared, shadow=kept, shadow_windows=shadowed)

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
                    self._score_shadow, prepared.shadow, prepared.shadow_windows, request,
                    prepared.as_of, request_id,
                )  # fmt: skip
        return response

    def _score_shadow(self, model, windows, request, as_of, request_id) -> None:
        started = time.perf_counter()
        try:
            predictions = model.predict(windows, request.symbols)
        except Exception as exc:  # the shadow never hurts the answer
            log.error("shadow %s v%s failed: %s", model.name, model.version, exc)
            return
        finally:
            with self._lock_pending:
                self._shadow_pending -= 1
        latency = (time.perf_counter() - started) * 1e3
        self.log.add(request_id, model, False, request.symbols, as_of, predictions, latency)

    def close(self) -> None:
        self._shadow.shutdown(wait=True)
        if self.log is not None:
            self.log.close()
