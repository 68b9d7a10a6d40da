"""`qtis trade live` end to end: the real service process, fed by the real alpaca-py data
stream from the stand-in market through the warehouse, trading through the real alpaca-py
trading client, driven one bar at a time by a rehearsal (trading_runtime.alpaca.rehearsal)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.alpaca import wait_for
from tests.support.cli import qtis
from tests.support.live import ARGS, COSTS, NEW_BARS, STRATEGY, STRATEGY_ARGS, SYMBOLS
from tests.support.service import free_port
from trading_runtime import events as ev
from trading_runtime.alpaca.rehearsal import Rehearsal
from trading_runtime.analytics.conventions import conventions
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.live import first_live_day
from trading_runtime.runs import report, run
from trading_runtime.settings import CostModel

pytestmark = pytest.mark.slow


def _service_env() -> dict[str, str]:
    return {
        "QTIS_COST_SLIPPAGE": "fixed",
        "QTIS_LIVE_HEALTH_PORT": str(free_port()),
        "QTIS_LIVE_GRACE_SECONDS": "30",
    }


def _fills(url: str, stream: str) -> list[tuple]:
    result = report(url, stream, conventions())
    return [(f["client_id"], f["quantity"], round(f["price"], 6)) for f in result.fills]


@pytest.mark.parametrize(
    ("feed", "broker"),
    [("alpaca", "alpaca"), ("warehouse", "sim")],
    ids=["alpaca-stream-and-broker", "warehouse-loads-and-simulated-venue"],
)
def test_a_live_session_fills_as_a_replay_of_the_same_bars(live_db, tmp_path, feed, broker):
    start = first_live_day(live_db, SYMBOLS)
    args = ["--feed", feed, "--broker", broker, *STRATEGY_ARGS]
    rehearsal = Rehearsal(live_db, SYMBOLS, NEW_BARS, "live", args, tmp_path,
                          CostModel(**COSTS), _service_env())  # fmt: skip
    with rehearsal:
        rehearsal.start()
        for _ in range(NEW_BARS):
            rehearsal.advance()
        assert rehearsal.stop() == 0
        at_broker = rehearsal.broker_orders()

    strategy = StrategyConfig(**STRATEGY)
    replay = RunConfig(stream="replay", symbols=SYMBOLS, start=start, strategies=[strategy],
                       costs=COSTS)  # fmt: skip
    run(live_db, replay)
    live_fills, replay_fills = _fills(live_db, "live"), _fills(live_db, "replay")
    assert live_fills, "the session traded nothing: nothing was compared"
    assert live_fills == replay_fills
    if broker == "alpaca":  # every order the journal sent reached the broker, and no other
        assert {f[0] for f in live_fills} <= set(at_broker) == rehearsal.submitted()


def test_an_operators_halt_applies_while_the_service_waits_for_a_bar(live_db, tmp_path):
    """Between daily bars a service waits for hours: a halt takes effect then, not at the next
    bar, and /healthz says so."""
    rehearsal = Rehearsal(live_db, SYMBOLS, 2, "halting", ARGS, tmp_path, CostModel(**COSTS),
                          _service_env())  # fmt: skip
    with rehearsal:
        rehearsal.start()
        rehearsal.advance()
        env = {"QTIS_DATABASE_URL": live_db, "QTIS_HOME": str(tmp_path)}
        halted = qtis("trade", "halt", "--stream", "halting", "--reason", "test", env=env)
        assert halted.returncode == 0, halted.stderr
        wait_for(lambda: ev.COMMAND_APPLIED in _types(live_db, "halting"), timeout=60)
        health = httpx.get(rehearsal.health_url, timeout=10)
        assert health.status_code == 503
        assert any("halted" in p for p in health.json()["problems"])
        rehearsal.advance()
        assert rehearsal.stop() == 0
    types = _types(live_db, "halting")
    bars = [i for i, t in enumerate(types) if t == ev.BAR_CLOSED]
    assert bars[0] < types.index(ev.COMMAND_APPLIED) < bars[1]


def _types(url: str, stream: str) -> list[str]:
    journal = Journal(url, stream)
    try:
        return [event.type for event in journal.read()]
    finally:
        journal.close()
