"""Vendors as live sources in tests: a source run on a thread for a ``with`` block, the
stand-in market's minute bars, and what the database stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

import pandas as pd
import psycopg

from tests.support.alpaca import DAY0, daily_bars, wait_for
from trading_runtime.alpaca.market import Market
from warehouse.live import LiveSource, run_source
from warehouse.settings import WarehouseSettings

SYMBOLS = ["AAA", "BBB", "CCC"]
COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume"]
# each load is several database round trips, on 2 cores shared with other suites
eventually = partial(wait_for, timeout=60.0)


def minute_bars(steps: int) -> pd.DataFrame:
    """The stand-in's seeded bars, one a minute from 14:30 UTC."""
    bars = daily_bars(SYMBOLS, steps)
    return bars.assign(ts=DAY0 + timedelta(hours=9, minutes=30) + (bars["ts"] - DAY0) / 1440)


def published(market: Market) -> list[tuple]:
    """What the stand-in has published so far, as :func:`stored` lists market.bars."""
    frame = market.history(SYMBOLS, None, None)
    return [
        (r[0], r[1].to_pydatetime(), *map(float, r[2:]))
        for r in frame[COLUMNS].itertuples(index=False)
    ]


@contextmanager
def running(source: LiveSource, url: str) -> Iterator[list[BaseException]]:
    """``run_source`` on a thread; stopped (and its failure, if any, listed) at the end."""
    stop, failures = threading.Event(), []

    def target() -> None:
        try:
            run_source(source, url, WarehouseSettings(), stop)
        except BaseException as exc:  # handed to the test through ``failures``
            failures.append(exc)

    thread = threading.Thread(target=target, name="live-source", daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the source did not stop"


def stored(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"select {', '.join(COLUMNS)} from market.bars order by 1, 2"
        ).fetchall()


def quarantined(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select symbol, reason, source from market.bars_quarantine order by 1"
        ).fetchall()
