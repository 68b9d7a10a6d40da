"""Bars that continue a stored market past its last day: what a local stand-in market streams
as "new" bars in the demo, the tests and the live benchmark, where no real market can be
reached.

Each new session repeats a whole day drawn from the stored history - every symbol's open, high,
low and close relative to its previous close, and its volume - so the symbols keep their
volatility and their co-movement, and the new bars look like the old ones to the model. Days
are drawn with a seeded generator: the same history and seed give the same bars."""

from __future__ import annotations

import exchange_calendars as xcals
import numpy as np
import pandas as pd

PRICES = ("open", "high", "low", "close")


def next_sessions(after: pd.Timestamp, count: int, exchange: str = "XNYS") -> pd.DatetimeIndex:
    """The ``count`` sessions of ``exchange`` after the day of ``after``, stamped at midnight
    UTC as the warehouse stamps daily bars."""
    calendar = xcals.get_calendar(exchange)
    first = calendar.date_to_session(after.tz_convert("UTC").normalize().tz_localize(None), "next")
    if first <= after.tz_convert("UTC").normalize().tz_localize(None):
        first = calendar.next_session(first)
    sessions = calendar.sessions_window(first, count)
    return pd.DatetimeIndex(sessions).tz_localize("UTC")


def continuation(history: pd.DataFrame, count: int, seed: int = 0) -> pd.DataFrame:
    """``count`` new daily bars per symbol after the last one in ``history`` (symbol, ts,
    open, high, low, close, volume; at least two days that every symbol has), stamped at the
    time of day the last one is (05:00 UTC for bars stamped at midnight in New York)."""
    wide = history.pivot(index="ts", columns="symbol")
    wide = wide.dropna().sort_index()
    if len(wide) < 2:
        raise ValueError("continuing a market needs at least two days that every symbol has")
    symbols = list(wide["close"].columns)
    previous = wide["close"].shift(1).iloc[1:]
    shapes = {field: (wide[field].iloc[1:] / previous).to_numpy() for field in PRICES}
    volume = wide["volume"].iloc[1:].to_numpy()
    days = np.random.default_rng(seed).integers(0, len(previous), size=count)
    last = wide["close"].iloc[-1].to_numpy()
    stamp = wide.index[-1].tz_convert("UTC")
    times = next_sessions(stamp, count) + (stamp - stamp.normalize())  # stamped as the last
    rows = []
    for t, day in zip(times, days, strict=True):
        bar = {field: last * shapes[field][day] for field in PRICES}
        rows.append(pd.DataFrame({"symbol": symbols, "ts": t, **bar, "volume": volume[day]}))
        last = bar["close"]
    return pd.concat(rows, ignore_index=True)
