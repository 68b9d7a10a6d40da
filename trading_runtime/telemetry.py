"""Prometheus metrics of a running engine, derived from the events it journals (the same ones
every other view is built from): per account equity, P&L, gross exposure, drawdown and risk
state at each bar close; orders, fills and denials (by the check that denied) as counters; the
tick-to-order latency as a histogram. ``serve(port)`` exposes them on ``/metrics``."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState

STATES = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
# seconds: a bar's decision is ~1-20 ms on this machine; a rebalance of hundreds of assets ~1 s
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EventObserver(Protocol):
    """Sees every event the engine journals, after the book applied it (metrics, alerts)."""

    def observe(self, event: ev.Event, book: Book) -> None: ...


class RuntimeMetrics:
    def __init__(self, stream: str, registry: CollectorRegistry | None = None) -> None:
        self.stream = stream
        self.registry = r = registry or CollectorRegistry()
        by = ["stream", "account"]
        self.equity = Gauge("qtis_equity", "equity at the last bar close", by, registry=r)
        self.pnl = Gauge("qtis_pnl", "equity minus the starting capital", by, registry=r)
        self.exposure = Gauge("qtis_gross_exposure", "gross market value / equity", by, registry=r)
        self.drawdown = Gauge("qtis_drawdown", "1 - equity / its peak", by, registry=r)
        self.state = Gauge("qtis_risk_state", "0 active, 1 reducing, 2 halted", by, registry=r)
        self.orders = Counter("qtis_orders", "orders sent to the venue", by, registry=r)
        self.fills = Counter("qtis_fills", "fills", by, registry=r)
        self.denials = Counter(
            "qtis_denials", "orders the risk engine denied", [*by, "check"], registry=r
        )
        self.tick_to_order = Histogram(
            "qtis_tick_to_order_seconds", "bar in to order at the venue", ["stream"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def observe(self, event: ev.Event, book: Book) -> None:
        """Update from one event, after ``book`` has applied it."""
        if isinstance(event, ev.BarClosed):
            for name, account in book.accounts.items():
                gross = sum(
                    abs(p.market_value(book.marks.get(s, p.avg_price), book.rates.get(s, 1.0)))
                    for s, p in account.positions.items()
                )
                labels = (self.stream, name)
                self.equity.labels(*labels).set(account.equity)
                self.pnl.labels(*labels).set(account.equity - account.initial)
                self.exposure.labels(*labels).set(gross / account.equity if account.equity else 0)
                self.drawdown.labels(*labels).set(account.drawdown)
                self.state.labels(*labels).set(STATES[account.state])
        elif isinstance(event, ev.OrderSubmitted):
            self.orders.labels(self.stream, event.order.account).inc()
        elif isinstance(event, ev.OrderFilled):
            self.fills.labels(self.stream, event.fill.account).inc()
        elif isinstance(event, ev.OrderDenied):
            self.denials.labels(self.stream, event.order.account, event.check).inc()
        elif isinstance(event, ev.RiskStateChanged):
            self.state.labels(self.stream, event.account).set(STATES[TradingState(event.state)])
        elif isinstance(event, ev.OrderAccepted) and event.tick_to_order_us is not None:
            self.tick_to_order.labels(self.stream).observe(event.tick_to_order_us / 1e6)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose ``/metrics`` on ``host:port`` (0: a free port) from a daemon thread; returns
        the port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
