"""Operators' commands cannot stop trading: a bad one is refused before it is journaled (with
or without a running engine), and one that is in a journal already but cannot apply (journaled
by an older QTIS, or by hand) is answered with a ``command_applied`` carrying its error while the
commands after it - a halt - still apply."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.book import new_book
from trading_runtime import events as ev
from trading_runtime.book import TradingState
from trading_runtime.chaos import events
from trading_runtime.commands import command_events, operator_command
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.operator import send_command
from trading_runtime.runs import run
from trading_runtime.settings import RiskLimits, RuntimeSettings
from trading_runtime.verify import verify

STRATEGY = StrategyConfig(signal="sma-cross", fast=2, slow=4, sizing="fixed", quantity=10)


def paper(market: str, stream: str, observers=()) -> None:
    config = RunConfig(mode="paper", stream=stream, strategies=[STRATEGY], start=date(2012, 6, 1))
    run(market, config, observers=observers, settings=RuntimeSettings(command_poll_seconds=0))


@pytest.fixture(scope="module")
def stopped(market) -> str:
    paper(market, "ops")
    return "ops"


BAD = [
    ("limits", None, {"max_position_notional": -5}, "max_position_notional"),
    ("limits", None, {"max_order_notional": "lots"}, "max_order_notional"),
    ("limits", None, {"max_order_notional": True}, "takes a number"),
    ("limits", None, {"bogus": 1}, "unknown limit 'bogus'"),
    ("limits", None, {}, "at least one"),
    ("halt", "nobody", None, "no sub-account 'nobody' (have main)"),
]


@pytest.mark.parametrize("engine_running", [False, True])
@pytest.mark.parametrize(("command", "account", "limits", "message"), BAD)
def test_a_bad_command_is_refused_before_it_is_journaled(
    market, stopped, engine_running, command, account, limits, message
):
    engine = Journal(market, stopped)  # holds the stream's lock as a running engine does
    try:
        if engine_running:
            assert engine.acquire()
        before = events(market, stopped)
        with pytest.raises(ValueError, match=re.escape(message)):
            send_command(market, stopped, command, "ops check", account, "ops", limits)
        assert events(market, stopped) == before  # nothing journaled
    finally:
        engine.close()


def test_limits_are_journaled_as_the_risk_engine_reads_them(market):
    paper(market, "typed")
    effects = send_command(
        market, "typed", "limits", "tighten", None, "ops", {"max_position_notional": "2e5"}
    )
    applied, changed = effects
    assert applied.error is None
    assert changed.limits == {"max_position_notional": 200_000.0}  # a number, not the text


class Operator:
    """Journals ``commands`` into the running engine's stream at its ``at``-th bar, the way an
    operator's CLI does - but unchecked, as an older QTIS (or a hand-written row) would."""

    def __init__(self, url: str, stream: str, at: int, commands: list[ev.Command]) -> None:
        self.url, self.stream, self.at, self.commands = url, stream, at, commands
        self.bars, self.seqs = 0, []

    def observe(self, event: ev.Event, book) -> None:
        if isinstance(event, ev.BarClosed):
            self.bars += 1
            if self.bars == self.at:
                journal = Journal(self.url, self.stream)
                try:
                    self.seqs = [journal.append_command(c) for c in self.commands]
                finally:
                    journal.close()


def test_a_journaled_command_that_cannot_apply_does_not_stop_the_commands_after_it(market):
    operator = Operator(market, "poisoned", 10, [
        ev.Command("limits", "old-cli", "loosen", None, {"max_position_notional": -1}),
        ev.Command("flatten", "newer-cli", "not a command of this version"),
        ev.Command("limits", "old-cli", "typo", None, {"max_positon_notional": 1}),
        ev.Command("halt", "ops", "fat finger"),
    ])  # fmt: skip
    paper(market, "poisoned", observers=[operator])  # used to raise ValidationError here
    bad, unknown, typo, halt = operator.seqs
    journal = Journal(market, "poisoned")
    try:
        applied = {e.command_seq: e for e in journal.read(types=[ev.COMMAND_APPLIED])}
        after_halt = list(journal.read(after=applied[halt].seq))
        changed = list(journal.read(types=[ev.LIMITS_CHANGED]))
        problems = verify(journal).problems
    finally:
        journal.close()
    assert "max_position_notional" in applied[bad].error
    assert "unknown command 'flatten'" in applied[unknown].error
    assert "unknown limit 'max_positon_notional'" in applied[typo].error
    assert applied[halt].error is None
    halted = after_halt[0]
    assert isinstance(halted, ev.RiskStateChanged) and halted.state == TradingState.HALTED
    assert not any(isinstance(e, ev.OrderSubmitted) for e in after_halt)
    assert changed == []  # the bad limits changed nothing
    assert problems == []


LIMIT_NAMES = st.sampled_from([*RiskLimits.model_fields, "bogus", ""])
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**7), st.floats(allow_nan=True),
    st.text(max_size=5), st.lists(st.integers(), max_size=2),
)  # fmt: skip


@settings(deadline=None)  # two cores shared with other suites: timing is not what is tested
@given(st.dictionaries(LIMIT_NAMES, VALUES, max_size=4))
def test_any_limits_are_refused_up_front_or_apply_cleanly(limits):
    """Whatever an operator (or an old journal) asks, applying it never raises: a command the
    CLI would refuse is answered with its error, one it accepts applies without one."""
    book = new_book()
    journaled = command_events(book, 1, ev.Command("limits", "ops", "why", None, limits))
    assert isinstance(journaled[0], ev.CommandApplied)
    try:
        checked = operator_command("limits", "ops", "why", None, limits)
    except ValueError:
        assert journaled[0].error and len(journaled) == 1
        return
    assert journaled[0].error is None
    (changed,) = command_events(book, 1, checked)[1:]
    RiskLimits(**{**book.accounts["a"].limits, **changed.limits})
