"""Alerts from a trading run's events, to the monitoring alert sink: an account moved to
REDUCING or HALTED, an order denied by a limit (once per check per dedup window), a risk alert
(a correlation breakdown), a reconciliation that found the book and the broker apart (once per
set of differences per dedup window: a persistent one does not page every check). Monitoring
watches the runtime: the engine knows nothing of alerts.

The engine calls ``observe`` inside its loop, so nothing here waits: alerts are de-duplicated in
memory and go out through a background queue (:class:`monitoring.alert_queue.AlertQueue`), and a
slow webhook costs the engine nothing. ``close`` at the end of the run delivers what is queued."""

from __future__ import annotations

import hashlib

from monitoring.alert_queue import AlertQueue
from monitoring.alerts import AlertSink
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState
from trading_runtime.reconcile import summary


class RuntimeAlerts:
    """An engine observer (``trading_runtime.telemetry.EventObserver``)."""

    def __init__(self, stream: str, sink: AlertSink) -> None:
        self.stream = stream
        self.queue = AlertQueue(sink, sink.settings.queue_size)

    def observe(self, event: ev.Event, book: Book) -> None:
        send = self.queue.send
        if isinstance(event, ev.RiskStateChanged) and event.state != TradingState.ACTIVE:
            where = f"{self.stream}/{event.account}"
            severity = "critical" if event.state == TradingState.HALTED else "warning"
            send(
                f"{where}:state:{event.state}",
                severity,
                f"{where} is {event.state}: {event.reason}",
            )
        elif isinstance(event, ev.OrderDenied):
            where = f"{self.stream}/{event.order.account}"
            send(f"{where}:denied:{event.check}", "info",
                 f"{where}: order denied by {event.check}: {event.reason}")  # fmt: skip
        elif isinstance(event, ev.RiskAlert):
            where = f"{self.stream}/{event.account}"
            send(f"{where}:{event.kind}", "warning", f"{where}: {event.message}")
        elif isinstance(event, ev.Reconciled) and not event.matched:
            self._reconciled(event)

    def _reconciled(self, event: ev.Reconciled) -> None:
        what = sorted(f"{d['kind']}:{d.get('symbol') or d.get('client_id')}"
                      for d in event.differences)  # fmt: skip
        digest = hashlib.sha256("\n".join(what).encode()).hexdigest()[:12]
        severity = "critical" if event.action == "halted" else "warning"
        self.queue.send(
            f"{self.stream}:reconciled:{event.action}:{digest}",
            severity,
            f"{self.stream}: the book and the broker differ ({event.trigger}), "
            f"{event.action}: {summary(event.differences)}",
        )

    def close(self) -> None:
        """Deliver the queued alerts (bounded by the webhook's timeout)."""
        self.queue.close()
