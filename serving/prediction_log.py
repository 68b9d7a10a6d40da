"""Every answer and every shadow prediction, one row per model per request, written to
``mlops.prediction_log`` by a background thread in batches, so logging never slows a request."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from warehouse.db import connect

log = logging.getLogger("qtis.serving")


class PredictionLog:
    def __init__(self, url: str, flush_seconds: float = 0.5, max_pending: int = 100_000) -> None:
        self.url, self.flush_seconds = url, flush_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qtis-prediction-log", daemon=True)
        self._thread.start()
        self.dropped = 0

    def add(
        self,
        request_id: str,
        model: Any,
        served: bool,
        symbols: list[str] | None,
        as_of: list[datetime] | None,
        predictions: np.ndarray,
        latency_ms: float,
    ) -> None:
        row = (
            request_id,
            model.role,
            served,
            model.name,
            model.version,
            symbols,
            as_of[0] if as_of else None,
            predictions,
            latency_ms,
        )
        try:
            self._queue.put_nowait(row)
        except queue.Full:  # a stuck database must not stall serving
            self.dropped += 1

    def _drain(self) -> list[tuple]:
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                return rows

    def _write(self, rows: list[tuple]) -> None:
        values = [
            (*r[:7], Jsonb(np.asarray(r[7], dtype=float).round(10).tolist()), r[8]) for r in rows
        ]
        with connect(self.url) as conn, conn.cursor() as cur:
            cur.executemany(
                "insert into mlops.prediction_log (request_id, role, served, model, version,"
                " symbols, as_of, predictions, latency_ms) values"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                values,
            )

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def flush(self) -> None:
        rows = self._drain()
        if not rows:
            return
        try:
            self._write(rows)
        except Exception as exc:
            self.dropped += len(rows)
            log.error("prediction log: %d rows not written: %s", len(rows), exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
