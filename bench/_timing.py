"""Latency of one call, timed one at a time after a warm-up: the figure every in-process
inference benchmark reports (p50 and p99 in milliseconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def call_latency(
    predict: Callable[[Any], Any],
    x: Any,
    repeats: int,
    warmup: int = 50,
    sync: Callable[[], None] | None = None,
) -> dict[str, float]:
    """p50/p99 of ``predict(x)`` over ``repeats`` calls after ``warmup`` untimed ones (they build
    kernels and caches). ``sync`` waits for a device's queued work, so a GPU call is timed to
    its end rather than to its launch."""
    times = []
    for i in range(repeats + warmup):
        start = time.perf_counter()
        predict(x)
        if sync is not None:
            sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "calls": repeats,
    }
