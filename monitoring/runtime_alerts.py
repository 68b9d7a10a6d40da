"""Alerts from a trading run's events, to the monitoring alert sink: an account moved to
REDUCING or HALTED, an order denied by a limit (once per check per dedup window), a risk alert
(a correlation breakdown). Monitoring watches the runtime: the engine knows nothing of alerts."""

from __future__ import annotations

from monitoring.alerts import AlertSink
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState


class RuntimeAlerts:
    """An engine observer (``trading_runtime.telemetry.EventObserver``)."""

    def __init__(self, stream: str, sink: AlertSink | None = None) -> None:
        self.stream, self.sink = stream, sink or AlertSink()

    def observe(self, event: ev.Event, book: Book) -> None:
        p, where = event.payload, f"{self.stream}/{event.payload.get('account', '')}"
        if event.type == ev.RISK_STATE_CHANGED and p["state"] != TradingState.ACTIVE:
            severity = "critical" if p["state"] == TradingState.HALTED else "warning"
            self.sink.send(f"{where}:state:{p['state']}", severity,
                           f"{where} is {p['state']}: {p['reason']}")  # fmt: skip
        elif event.type == ev.ORDER_DENIED:
            where = f"{self.stream}/{p['order']['account']}"
            self.sink.send(f"{where}:denied:{p['check']}", "info",
                           f"{where}: order denied by {p['check']}: {p['reason']}")  # fmt: skip
        elif event.type == ev.RISK_ALERT:
            self.sink.send(f"{where}:{p['kind']}", "warning", f"{where}: {p['message']}")
