"""The promotion gate's view of serving: does a registered version load the way the service loads
it (its files checked against the digests of its registration and of the decision that last
installed it, if any), answer a real window sent through the request schema with a valid
response, and how long does one single-window prediction take (p50/p99, in process: the model's
own share of a request's latency)."""

from __future__ import annotations

import time

import numpy as np

from registry.loaded import check_promoted
from registry.model_registry import ModelRegistry
from registry.promotions import Probe, ServingCheck, installed
from registry.settings import TrackingSettings
from serving.schemas import PredictRequest, PredictResponse
from serving.windows import WindowSource


def serving_probe(url: str, samples: int = 200, *, tracking: TrackingSettings) -> Probe:
    """The check of a version, loaded from ``tracking``'s registry as the service loads it."""
    registry = ModelRegistry(url, tracking)

    def check(name: str, version: str) -> ServingCheck:
        try:
            model = registry.load("champion", name, str(version))
            check_promoted(model, installed(url, name, str(version), model.run_id))
        except Exception as exc:
            return ServingCheck(False, None, None, f"does not load: {type(exc).__name__}: {exc}")
        try:
            window = WindowSource(url, model.features).sample(model.window, n=1)
            request = PredictRequest.model_validate_json(
                PredictRequest(windows=window.tolist()).model_dump_json()
            )
            x = np.asarray(request.windows, dtype=np.float32)
            model.predict(x)  # warm up
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                out = model.predict(x)
                times.append((time.perf_counter() - started) * 1e3)
            PredictResponse(
                request_id="probe",
                model=name,
                version=str(version),
                role="champion",
                horizons=list(model.horizons),
                predictions=np.asarray(out, dtype=np.float64).tolist(),
            )
            if np.shape(out) != (1, len(model.horizons)):
                raise ValueError(
                    f"answered shape {np.shape(out)} for 1 window, not (1, {len(model.horizons)})"
                )
        except Exception as exc:
            return ServingCheck(False, None, None, f"does not answer: {type(exc).__name__}: {exc}")
        p50, p99 = np.percentile(times, [50, 99])
        return ServingCheck(True, float(p50), float(p99), f"loads and answers ({samples} calls)")

    return check
