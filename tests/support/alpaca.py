"""The stand-in Alpaca market for tests: synthetic daily bars of a few symbols, a market over
them and the server, and the real alpaca-py streams run on threads."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from trading_runtime.alpaca.market import COLUMNS, Market

DAY0 = datetime(2024, 1, 2, 5, tzinfo=UTC)
KEY, SECRET = "test-key", "test-secret"


def daily_bars(symbols: list[str], days: int, seed: int = 7) -> pd.DataFrame:
    """Seeded random-walk OHLCV, one bar per symbol and day (weekends included: the
    stand-in does not care)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, symbol in enumerate(symbols):
        close = 50.0 + 10 * k
        for d in range(days):
            o = close * (1 + rng.normal(0, 0.01))
            close = o * (1 + rng.normal(0, 0.02))
            hi, lo = max(o, close) * 1.01, min(o, close) * 0.99
            rows.append((symbol, DAY0 + timedelta(days=d), o, hi, lo, close, 1e6))
    return pd.DataFrame(rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume"])


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true (a stream delivers on its own thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(0.01)


class Running:
    """An alpaca-py stream (``run()``/``stop()``) on its own thread for the ``with`` block."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.thread = threading.Thread(target=stream.run, name="alpaca-test-stream", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.stream

    def __exit__(self, *exc) -> None:
        wait_for(lambda: self.stream._loop is not None)
        self.stream.stop()
        self.thread.join(10)


def market_of(feed, costs, instruments) -> Market:
    """A stand-in market over the bars of ``feed`` (a ``BarFeed``)."""
    rows = []
    for step in range(len(feed)):
        b = feed.at(step)
        for i, symbol in enumerate(feed.symbols):
            if not math.isnan(b.open[i]):
                values = (b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i])
                rows.append((symbol, b.ts, *map(float, values)))
    return Market(pd.DataFrame(rows, columns=list(COLUMNS)), costs, instruments)


def follow(market: Market, feed, adapter) -> None:
    """Make ``feed`` move the market to each bar before the engine gets it, and wait until
    the adapter received every trade update that caused (the order a live session has too:
    a broker's updates reach the engine before its bars went through the warehouse)."""
    replay = feed.replay

    def replay_here(*args, **kwargs):
        for bar in replay(*args, **kwargs):
            while market.step < bar.step:
                market.advance()
            wait_for(lambda: adapter.received == market.updates_sent)
            yield bar

    feed.replay = replay_here
