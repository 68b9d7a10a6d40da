"""Adaptive batching in the service's event loop: while the model scores one batch, requests that
arrive queue up, and the next call scores all of them at once (up to ``max_windows``). Idle, a
request is scored at once, so batching costs nothing at low load.

Why not BentoML's batchable API: it is reached only through an HTTP hop (the service calling
itself, or a dependency service), which measured 4 ms more per request than the direct path on
this machine and drops the caller's bearer token on the way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np


class AdaptiveBatcher:
    def __init__(
        self,
        max_windows: int = 256,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_windows, self.on_batch = max_windows, on_batch
        self._pending: deque[tuple[Any, np.ndarray, asyncio.Future]] = deque()
        self._worker: asyncio.Task | None = None

    async def score(self, model: Any, windows: np.ndarray) -> np.ndarray:
        """``model.predict(windows)``, merged with whatever else is waiting for the same model."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((model, windows, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _next_batch(self) -> list[tuple[Any, np.ndarray, asyncio.Future]]:
        model = self._pending[0][0]
        batch, size = [], 0
        while self._pending and self._pending[0][0] is model:
            n = len(self._pending[0][1])
            if batch and size + n > self.max_windows:
                break
            batch.append(self._pending.popleft())
            size += n
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._next_batch()
            model = batch[0][0]
            windows = np.concatenate([b[1] for b in batch]) if len(batch) > 1 else batch[0][1]
            if self.on_batch:
                self.on_batch(len(windows))
            try:
                out = await asyncio.to_thread(model.predict, windows)
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for _, part, future in batch:
                if not future.done():
                    future.set_result(out[start : start + len(part)])
                start += len(part)
