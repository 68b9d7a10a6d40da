"""Bars into a test database through the real loader, and feature tables back out as frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import psycopg

from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, Instrument, RawBars
from warehouse.settings import WarehouseSettings


def load_bars(url: str, raw: RawBars, keep: Callable[[pd.DataFrame], pd.Series] | None = None):
    """Ingest ``raw`` (optionally only rows where ``keep`` is true) through the real loader."""
    frame = raw.frame if keep is None else raw.frame[keep(raw.frame)].reset_index(drop=True)
    report = ingest(
        FrameProvider(replace(raw, frame=frame, original=None)), url, WarehouseSettings()
    )
    assert report.quarantined == 0
    return report


def read_table(url: str, table: str, where: str = "true") -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from {table} where {where} order by symbol, ts")
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def hand_bars(rows: list[tuple], symbol: str = "TEST") -> RawBars:
    """(date, open, high, low, close, volume) rows of one symbol."""
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    frame.insert(0, "symbol", symbol)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    return RawBars(frame, "hand", "test", [Instrument(symbol, sector="test")])


def good_frame(n: int = 5, symbol: str = "AAA") -> pd.DataFrame:
    """``n`` valid business-day bars of one symbol as text, the way a CSV file arrives."""
    days = pd.date_range("2021-01-04", periods=n, freq="B")
    close = 100 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": days.strftime("%Y-%m-%d"),
            "open": (close - 0.5).astype(str),
            "high": (close + 1).astype(str),
            "low": (close - 1).astype(str),
            "close": close.astype(str),
            "volume": "1000",
        }
    )
