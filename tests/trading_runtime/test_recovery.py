"""Crash recovery with a real ``kill -9``: a paper run killed at random points and restarted
each time ends in exactly the state of a run that was never interrupted - no order sent twice,
no fill lost - and the venue saw every order once."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from trading_runtime.book import rebuild
from trading_runtime.chaos import crash_and_resume
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import run

pytestmark = pytest.mark.slow  # kill -9 of a paper run in a subprocess, many times

ARGS = [
    "--signal",
    "sma-cross",
    "--fast",
    "3",
    "--slow",
    "8",
    "--sizing",
    "vol-target",
    "--trail-atr",
    "2",
    "--start",
    "2012-03-01",
    "--bars-per-second",
    "0",
]


def state(url: str, stream: str) -> tuple:
    journal = Journal(url, stream)
    try:
        book = rebuild(journal)
        fills = [e.fill for e in journal.read(types=["order_filled"])]
        submitted = [e.order.client_id for e in journal.read(types=["order_submitted"])]
    finally:
        journal.close()
    orders = {c: (o.status, o.filled, round(o.avg_price, 9)) for c, o in book.orders.items()}
    accounts = {
        n: (
            round(a.cash, 6),
            round(a.equity, 6),
            a.state.value,
            {s: p.quantity for s, p in a.positions.items()},
        )
        for n, a in book.accounts.items()
    }
    return orders, accounts, fills, submitted, book.step, book.finished


def test_kill_minus_nine_at_random_points_loses_and_repeats_nothing(market, tmp_path):
    strategy = StrategyConfig(signal="sma-cross", fast=3, slow=8, trail_atr=2.0)
    reference = RunConfig(mode="paper", stream="calm", strategies=[strategy], start="2012-03-01")
    run(market, reference, venue_log=tmp_path / "calm.jsonl")
    log = tmp_path / "crashy.jsonl"
    env = {**os.environ, "QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    crashes = crash_and_resume(
        market, "crashy", [*ARGS, "--venue-log", str(log)], env, kills=4, seed=8, max_gap=70
    )
    assert crashes.kills >= 3, crashes
    calm, crashy = state(market, "calm"), state(market, "crashy")
    *_, fills, submitted, _, finished = crashy
    assert finished and len(fills) > 10
    assert crashy == calm  # orders, positions, cash, every fill and the last bar
    assert max(Counter(submitted).values()) == 1  # journaled once each
    received = [json.loads(line)["client_id"] for line in log.read_text().splitlines()]
    assert sorted(received) == sorted(submitted)  # the venue got each order exactly once
