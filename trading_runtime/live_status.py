"""What a live session is doing, for ``/healthz`` and the session's summary: derived from the
events the engine journals (as every other view is), plus whether the broker is connected.

Healthy means trading: the feed is fresh, the broker connected, the last reconciliation found
the book equal to the broker (or corrected it), and no account is halted. Each reason it is not
is named, so the answer says what to look at."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState
from warehouse.live import SourceStats


class LiveStatus:
    """An event observer (``telemetry.EventObserver``); ``connected`` asks the broker adapter."""

    def __init__(self, stream: str, connected: Callable[[], bool] = lambda: True) -> None:
        self.stream, self.connected = stream, connected
        self.started = time.time()
        self.bars = self.orders = self.fills = self.late = 0
        self.last_bar: str | None = None
        self.last_bar_at: float | None = None
        self.feed = "fresh"
        self.feed_reason = ""
        self.reconciled: dict[str, Any] | None = None
        self.halted: dict[str, str] = {}
        self.source: SourceStats | None = None  # the vendor's stream, when this service runs it
        self._lock = threading.Lock()

    def observe(self, event: ev.Event, book: Book) -> None:
        with self._lock:
            if isinstance(event, ev.BarClosed):
                self.bars += 1
                self.last_bar, self.last_bar_at = event.ts, time.time()
            elif isinstance(event, ev.OrderSubmitted):
                self.orders += 1
            elif isinstance(event, ev.OrderFilled):
                self.fills += 1
            elif isinstance(event, ev.BarLate):
                self.late += 1
            elif isinstance(event, ev.FeedStatus):
                self.feed, self.feed_reason = event.state, event.reason
            elif isinstance(event, ev.Reconciled):
                self.reconciled = {
                    "trigger": event.trigger,
                    "matched": event.matched,
                    "differences": len(event.differences),
                    "action": event.action,
                    "at": time.time(),
                }
            elif isinstance(event, ev.RiskStateChanged):
                if event.state == TradingState.HALTED.value:
                    self.halted[event.account] = event.reason
                else:
                    self.halted.pop(event.account, None)

    def health(self) -> dict[str, Any]:
        """``/healthz``: healthy, and why not."""
        with self._lock:
            problems = []
            if self.feed != "fresh":
                problems.append(f"feed {self.feed}: {self.feed_reason}")
            if not self.connected():
                problems.append("broker disconnected")
            if self.source is not None and not self.source.connected:
                problems.append("market data stream disconnected (reconnecting)")
            if self.reconciled and self.reconciled["action"] == "halted":
                problems.append("the book differs from the broker: trading halted")
            problems += [f"{name} halted: {why}" for name, why in sorted(self.halted.items())]
            return {
                "healthy": not problems,
                "problems": problems,
                "stream": self.stream,
                "up_seconds": round(time.time() - self.started, 1),
                "bars": self.bars,
                "last_bar": self.last_bar,
                "seconds_since_bar": None
                if self.last_bar_at is None
                else round(time.time() - self.last_bar_at, 1),
                "orders": self.orders,
                "fills": self.fills,
                "late_bars": self.late,
                "reconciled": self.reconciled,
                "market_data": self._market_data(),
            }

    def _market_data(self) -> dict[str, Any] | None:
        source = self.source
        if source is None:
            return None
        return {"connected": source.connected, "loads": source.loads,
                "reconnects": max(0, source.connects - 1)}  # fmt: skip
