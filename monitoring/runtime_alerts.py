"""Alerts from a trading run's events, to the monitoring alert sink: an account moved to
REDUCING or HALTED, an order denied by a limit (once per check per dedup window), a risk alert
(a correlation breakdown). Monitoring watches the runtime: the engine knows nothing of alerts.

The engine calls ``observe`` inside its loop, so nothing here waits: alerts are de-duplicated in
memory and go out through a background queue (:class:`monitoring.alert_queue.AlertQueue`), and a
slow webhook costs the engine nothing. ``close`` at the end of the run delivers what is queued."""

from __future__ import annotations

from monitoring.alert_queue import AlertQueue
from monitoring.alerts import AlertSink
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState


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

    def close(self) -> None:
        """Deliver the queued alerts (bounded by the webhook's timeout)."""
        self.queue.close()
