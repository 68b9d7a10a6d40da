"""Alerts from a trading run's events, to the monitoring alert sink: an account moved to
REDUCING or HALTED, an order denied by a limit (once per check per dedup window), a risk alert
(a correlation breakdown). Monitoring watches the runtime: the engine knows nothing of alerts."""

from __future__ import annotations

from monitoring.alerts import AlertSink
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState


class RuntimeAlerts:
    """An engine observer (``trading_runtime.telemetry.EventObserver``)."""

    def __init__(self, stream: str, sink: AlertSink) -> None:
        self.stream, self.sink = stream, sink

    def observe(self, event: ev.Event, book: Book) -> None:
        if isinstance(event, ev.RiskStateChanged) and event.state != TradingState.ACTIVE:
            where = f"{self.stream}/{event.account}"
            severity = "critical" if event.state == TradingState.HALTED else "warning"
            self.sink.send(f"{where}:state:{event.state}", severity,
                           f"{where} is {event.state}: {event.reason}")  # fmt: skip
        elif isinstance(event, ev.OrderDenied):
            where = f"{self.stream}/{event.order.account}"
            self.sink.send(f"{where}:denied:{event.check}", "info",
                           f"{where}: order denied by {event.check}: {event.reason}")  # fmt: skip
        elif isinstance(event, ev.RiskAlert):
            where = f"{self.stream}/{event.account}"
            self.sink.send(f"{where}:{event.kind}", "warning", f"{where}: {event.message}")
