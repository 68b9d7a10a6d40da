"""Alerts sent from a background thread, for senders that must never wait: a trading engine
raises an alert in its loop, and a slow or dead webhook (up to QTIS_ALERT_TIMEOUT per alert)
must not hold up its next bar.

``send`` de-duplicates in memory (the sink's claim), then hands the alert to a bounded queue
without blocking; a worker thread writes the log line and calls the webhook. When the queue is
full the alert is dropped and counted (logged at the first drop and every ``WARN_EVERY`` after
it) - the engine is never made to wait - and its key is not counted as sent, so the next
occurrence tries again."""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any

from monitoring.alerts import AlertSink

log = logging.getLogger(__name__)

_STOP = None  # the worker's last item
WARN_EVERY = 100  # drops between two warnings: a flood of drops is not a flood of log lines


class AlertQueue:
    def __init__(self, sink: AlertSink, size: int) -> None:
        """``size``: alerts that may wait for the worker (QTIS_ALERT_QUEUE_SIZE)."""
        self.sink = sink
        self.dropped = self.delivered = self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(size)
        self._worker = threading.Thread(target=self._work, name="qtis-alerts", daemon=True)
        self._worker.start()

    @property
    def pending(self) -> int:
        """Alerts waiting for the worker (not the one it is delivering)."""
        return self._queue.qsize()

    def send(self, key: str, severity: str, message: str, now: datetime | None = None) -> bool:
        """Queue an alert; False when its key was sent within the dedup window, or when the
        queue is full (dropped with a warning). Never blocks."""
        alert = self.sink.claim(key, severity, message, now)
        if alert is None:
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.sink.unclaim(alert)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % WARN_EVERY == 0:
                log.warning(
                    "alert queue full (%d waiting for the webhook): dropped %s (%d dropped so far)",
                    self._queue.maxsize, key, self.dropped,
                )  # fmt: skip
            return False
        return True

    def _work(self) -> None:
        while (alert := self._queue.get()) is not _STOP:
            try:
                if self.sink.deliver(alert):
                    self.delivered += 1
                else:
                    self.failed += 1
            except OSError as exc:  # the log cannot be written: say so, keep serving
                self.failed += 1
                log.error("alert %s not recorded: %s", alert["key"], exc)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds (default: twice the
        webhook's timeout); what is left then is logged as undelivered."""
        timeout = 2 * self.sink.settings.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
            stop_queued = True
        except queue.Full:
            stop_queued = False
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            left = self.pending - stop_queued + 1  # and the one being delivered
            log.warning("%d alert(s) not delivered at shutdown: the webhook is too slow", left)
