"""Helpers of the live-source tests: a source run on a thread for a ``with`` block, and
waiting for what it stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from warehouse.live import LiveSource, run_source
from warehouse.settings import WarehouseSettings


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` until true: the source stores on its own thread."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(0.02)


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
            "select symbol, ts, open, high, low, close, volume from market.bars order by 1, 2"
        ).fetchall()


def quarantined(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select symbol, reason, source from market.bars_quarantine order by 1"
        ).fetchall()
