"""`qtis trade live` survives what the outside world does to it, end to end: the real service
process against the stand-in market (trading_runtime.alpaca.rehearsal), killed with SIGKILL at
random points while the broker keeps running; a broker that duplicates, reorders and splits
its trade updates, drops its streams and holds a position the book does not know; a feed that
stops; a bar out of the session."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd
import pytest

from tests.support.live import ARGS, COSTS, SYMBOLS
from tests.support.service import free_port
from trading_runtime.alpaca.rehearsal import KILL_POINTS, Rehearsal
from trading_runtime.settings import CostModel

pytestmark = pytest.mark.slow


def _rehearsal(url, home, count: int, env: dict[str, str] | None = None, **kw) -> Rehearsal:
    service = {
        "QTIS_COST_SLIPPAGE": "fixed",
        "QTIS_LIVE_HEALTH_PORT": str(free_port()),
        "QTIS_LIVE_GRACE_SECONDS": "30",
    }
    return Rehearsal(url, SYMBOLS, count, "live", ARGS, home, CostModel(**COSTS),
                     service | (env or {}), **kw)  # fmt: skip


def _until(done: Callable[[], bool], timeout: float = 60.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- kill -9 ------------------------------------------------------------------------------------


def _assert_book_equals_broker(r: Rehearsal) -> None:
    """Every journaled order reached the broker once, the broker has no other; its fills are
    the journal's; the last reconciliation found the book equal to the broker."""
    audit = r.audit()
    assert audit["ok"], audit


def _rounded(positions: dict[str, float]) -> dict[str, float]:
    return {s: round(q, 6) for s, q in positions.items() if round(q, 6)}


def _journaled_positions(r: Rehearsal) -> dict[str, float]:
    """Positions per symbol from the journal: its fills and its corrections."""
    held: Counter = Counter()
    for p in r.events("order_filled"):
        fill = p["fill"]
        held[fill["symbol"]] += fill["quantity"] * (1 if fill["side"] == "buy" else -1)
    for p in r.events("book_corrected"):
        if p["symbol"] is not None:
            held[p["symbol"]] += p["quantity_after"] - p["quantity_before"]
    return _rounded(held)


def test_kill_9_at_random_points_loses_nothing_and_sends_nothing_twice(live_db, tmp_path):
    rng = random.Random(28)
    points = rng.sample(KILL_POINTS, len(KILL_POINTS))
    rehearsal = _rehearsal(live_db, tmp_path, 60)
    with rehearsal:
        rehearsal.start()
        rehearsal.advance()
        for point in points:
            rehearsal.kill_at(point, rng)
            for _ in range(rng.randint(0, 1)):  # the market moves on while the service is down
                rehearsal.market.advance()
            rehearsal.restart()
            rehearsal.advance()
        rehearsal.advance()
        assert rehearsal.stop() == 0
        _assert_book_equals_broker(rehearsal)
        starts = [p for p in rehearsal.events("reconciled") if p["trigger"] == "start"]
        assert len(starts) == rehearsal.starts
        assert all(p["matched"] for p in starts), [p["differences"] for p in starts]
        assert not rehearsal.events("risk_state_changed"), "a restart stopped the trading"
        assert rehearsal.events("order_filled"), "nothing traded: nothing was checked"
        assert _journaled_positions(rehearsal) == _rounded(rehearsal.broker_positions())


# --- a misbehaving broker -----------------------------------------------------------------------


def test_a_misbehaving_broker_is_reconnected_deduplicated_and_adopted(live_db, tmp_path):
    env = {"QTIS_LIVE_RECONCILE_POLICY": "adopt", "QTIS_LIVE_RECONCILE_MINUTES": "0.001"}
    rehearsal = _rehearsal(live_db, tmp_path, 30, env)
    with rehearsal:
        rehearsal.start()
        for _ in range(2):
            rehearsal.advance()
        rehearsal.market.misbehave(duplicate_updates=True, reorder_updates=True, split_fills=True)
        for _ in range(5):
            rehearsal.advance()
        received = rehearsal.market.updates_sent
        rehearsal.market.drop_streams()  # trade updates and market data
        ts = rehearsal.market.advance()  # published while the streams reconnect
        rehearsal.wait_for_bar(ts, 120)
        for _ in range(3):
            rehearsal.advance()
        with rehearsal.market.lock:
            rehearsal.market.desk.inject_position("AAA", 7, 50.0)
        for _ in range(3):
            rehearsal.advance()
        assert rehearsal.stop() == 0
        assert rehearsal.market.updates_sent > received, "no trade update after the drop"
        _assert_book_equals_broker(rehearsal)
        reconciled = rehearsal.events("reconciled")
        assert "reconnect" in {p["trigger"] for p in reconciled}
        adopted = [p for p in reconciled if p["action"] == "adopted"]
        assert adopted and any("AAA" in str(d) for d in adopted[0]["differences"])
        assert rehearsal.events("book_corrected")
        assert _journaled_positions(rehearsal) == _rounded(rehearsal.broker_positions())


def test_a_position_the_book_does_not_know_halts_trading(live_db, tmp_path):
    env = {"QTIS_LIVE_RECONCILE_MINUTES": "0.001"}  # the default policy: halt
    rehearsal = _rehearsal(live_db, tmp_path, 12, env)
    with rehearsal:
        rehearsal.start()
        for _ in range(2):
            rehearsal.advance()
        with rehearsal.market.lock:
            rehearsal.market.desk.inject_position("BBB", 5, 70.0)
        halted_at = rehearsal.advance()
        for _ in range(4):
            rehearsal.advance()
        status, health = rehearsal.health()
        assert rehearsal.stop() == 0
    differing = [p for p in rehearsal.events("reconciled") if not p["matched"]]
    assert differing and differing[0]["action"] == "halted"
    assert any("BBB" in str(d) for d in differing[0]["differences"])
    assert "halted" in {p["state"] for p in rehearsal.events("risk_state_changed")}
    assert status == 503 and any("halted" in p for p in health["problems"]), health
    steps = {p["ts"]: p["step"] for p in rehearsal.events("bar_closed")}
    after = [
        p for p in rehearsal.events("order_submitted") if p["step"] > steps[halted_at.isoformat()]
    ]
    assert after == []


# --- a feed that stops; a bar out of the session ------------------------------------------------


def _with_a_saturday(bars: pd.DataFrame) -> pd.DataFrame:
    """The continued bars and, after their first Friday, a Saturday bar far from Friday's
    close (up 60% or down 40%): a trend signal allowed to trade it would."""
    friday = min(t for t in bars["ts"].unique() if pd.Timestamp(t).dayofweek == 4)
    rows = bars[bars["ts"] == friday].copy()
    rows["ts"] = pd.Timestamp(friday) + pd.Timedelta(days=1)
    jump = rows["symbol"].map({"AAA": 1.6, "BBB": 0.6, "CCC": 1.6})
    for column in ("open", "high", "low", "close"):
        rows[column] = rows["close"] * jump
    return pd.concat([bars, rows], ignore_index=True)


def test_a_stale_feed_alerts_and_no_order_rides_a_catch_up_or_a_saturday(live_db, tmp_path):
    env = {"QTIS_LIVE_STALE_SECONDS": "3"}
    rehearsal = _rehearsal(live_db, tmp_path, 16, env, amend=_with_a_saturday)
    with rehearsal:
        rehearsal.start()
        saturday = None
        for _ in range(8):
            ts = rehearsal.advance()
            saturday = ts if ts.weekday() == 5 else saturday
        assert saturday is not None, "the market published no Saturday bar"
        _until(lambda: rehearsal.health()[0] == 503, 30, "/healthz to report the stale feed")
        health = rehearsal.health()[1]
        caught_up = [rehearsal.market.advance() for _ in range(3)]
        rehearsal.wait_for_bar(caught_up[-1], 120)
        for _ in range(3):
            rehearsal.advance()
        assert rehearsal.stop() == 0
    assert any("feed stale" in p for p in health["problems"]), health
    states = [p["state"] for p in rehearsal.events("feed_status")]
    assert "stale" in states and "fresh" in states[states.index("stale") :]
    steps = {p["ts"]: p["step"] for p in rehearsal.events("bar_closed")}
    fresh = next(p for p in rehearsal.events("feed_status") if p["state"] == "fresh")
    catch_up = {steps[t.isoformat()] for t in caught_up if t <= pd.Timestamp(fresh["last_bar"])}
    assert catch_up, "no bar was caught up"
    untradable = catch_up | {steps[saturday.isoformat()]}
    decided = {p["step"] for p in rehearsal.events("order_submitted")}
    assert decided, "the session traded nothing: nothing was checked"
    assert not decided & untradable
    late = rehearsal.events("bar_late")
    assert {p["kind"] for p in late if p["ts"] == saturday.isoformat()} == {"out_of_session"}
