"""A paced feed gives the engine its waits: ``on_idle`` runs between paced bars (where an
operator's command is polled), never inside a bar's arrival-to-order window, and not for
history, which comes at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trading_runtime.feed import FIELDS, BarFeed


def test_on_idle_runs_while_a_paced_feed_waits_and_only_then():
    times = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    arrays = {f: np.ones((6, 2)) for f in FIELDS}
    feed = BarFeed(["A", "B"], times, arrays, first_trading_step=3)
    seen: list[str] = []
    feed.on_idle = lambda: seen.append("idle")
    for bar in feed.replay(0, bars_per_second=200.0, paced_from=3):
        seen.append(f"bar {bar.step}")
    assert seen == ["bar 0", "bar 1", "bar 2", "idle", "bar 3", "idle", "bar 4", "idle", "bar 5"]
    seen.clear()
    assert [b.step for b in feed.replay(0)] == list(range(6)) and seen == []  # a backtest
