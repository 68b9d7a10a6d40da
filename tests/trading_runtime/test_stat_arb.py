"""Pairs trading as a signal source: entries and exits at hand-set z-scores, a selection that
never sees a bar after the one it is made on, and the strategy through the real engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from tests.support.bars import load_bars
from tests.support.cointegrated import as_bars, cointegrated_logs
from tests.support.db import copy_database
from trading_runtime.broker import CrossSection
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import run
from trading_runtime.stat_arb import PairsSignals

START = datetime(2020, 1, 1, tzinfo=UTC)


def bar(step: int, logs: np.ndarray) -> CrossSection:
    close = np.exp(logs)
    return CrossSection(step, START + timedelta(days=step), close, close, close, close, close)


def feed(source: PairsSignals, logs: np.ndarray) -> list[np.ndarray]:
    """Observe every row of ``logs``; the strengths after each."""
    out = []
    for step, row in enumerate(logs):
        source.observe(bar(step, row), None)
        out.append(source.signals(bar(step, row))[0])
    return out


def test_entries_and_exits_follow_the_spread_zscore():
    source = PairsSignals(3, formation=250, reselect=100, entry_z=2.0, exit_z=0.5)
    history = cointegrated_logs(250)
    feed(source, history)
    (pair,) = source.pairs
    assert (pair.first, pair.second) == (0, 1)
    second = history[-1, 1]
    rows, wanted = [], []
    for z, direction in [(0.0, 0), (2.5, -1), (1.0, -1), (0.3, 0), (-2.5, 1), (-1.0, 1),
                         (-0.4, 0), (-1.9, 0)]:  # fmt: skip
        first = pair.intercept + pair.hedge_ratio * second + pair.mean + z * pair.sd
        rows.append([first, second, history[-1, 2]])
        wanted.append(direction)
    strengths = feed(source, np.array(rows))
    scale = max(1.0, pair.hedge_ratio)
    for strength, direction in zip(strengths, wanted, strict=True):
        expected = [direction / scale, -direction * pair.hedge_ratio / scale, 0.0]
        assert strength == pytest.approx(expected)


def test_the_selection_never_sees_a_later_bar():
    logs = cointegrated_logs(600)
    perturbed = logs.copy()
    cut = 400  # bars from here on are changed: everything decided before must not move
    perturbed[cut:] += np.random.default_rng(0).normal(0, 0.2, perturbed[cut:].shape)
    a, b = (PairsSignals(3, formation=200, reselect=50) for _ in range(2))
    strength_a, strength_b = feed(a, logs), feed(b, perturbed)
    before = [s for s in a.selections if s.ts < START + timedelta(days=cut)]
    assert len(before) == 5  # bars 199, 249, ..., 399
    assert b.selections[: len(before)] == before
    assert np.array_equal(np.array(strength_a[:cut]), np.array(strength_b[:cut]))
    assert a.selections[len(before) :] != b.selections[len(before) :]  # the change is seen later


def test_a_pair_not_chosen_again_is_closed():
    source = PairsSignals(3, formation=100, reselect=20, entry_z=0.5, exit_z=0.0)
    logs = cointegrated_logs(160)
    strengths = feed(source, logs)
    assert np.abs(strengths[100:]).sum() > 0  # it traded the pair
    walks = logs[-1] + np.cumsum(np.random.default_rng(5).normal(0, 0.02, (120, 3)), axis=0)
    after = feed(source, walks)  # the formation window now holds unrelated walks only
    assert source.pairs == [] and source.selections[-1].pairs == ()
    assert not np.any(after[-1])


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="exit_z < entry_z"):
        PairsSignals(3, entry_z=1.0, exit_z=1.5)
    with pytest.raises(ValueError, match="allow_short"):
        StrategyConfig(signal="pairs", sizing="equal")
    with pytest.raises(ValueError, match="sizing equal"):
        StrategyConfig(signal="pairs", limits={"allow_short": True})
    with pytest.raises(ValueError, match="go with signal pairs"):
        StrategyConfig(signal="sma-cross", pairs={"formation": 100})


@pytest.fixture
def pairs_market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, as_bars(cointegrated_logs(520, seed=11, spread_sd=0.005), ["AAA", "BBB", "CCC"]))
    return url


def test_the_pairs_strategy_trades_only_the_pair_through_the_engine(pairs_market):
    strategy = StrategyConfig(
        name="pairs",
        signal="pairs",
        sizing="equal",
        capital=300_000,  # no leg reaches the order notional limit (it would cut the ratio)
        limits={"allow_short": True},
        pairs={"formation": 150, "reselect": 60, "entry_z": 1.5, "exit_z": 0.25},
    )
    config = RunConfig(
        stream="pairs", symbols=["AAA", "BBB", "CCC"], strategies=[strategy],
        start=date(2020, 9, 1), warmup_bars=170, free_costs=True,
    )  # fmt: skip
    report = run(pairs_market, config)
    fills = report.fills
    assert len(fills) >= 4
    assert {f["symbol"] for f in fills} == {"AAA", "BBB"}  # never the unrelated walk
    held = {"AAA": 0.0, "BBB": 0.0}
    by_order: dict[str, dict] = {}
    for f in fills:
        legs = by_order.setdefault(f["client_id"].rsplit("-", 1)[0], {})
        legs[f["symbol"]] = {**f, "opens": held[f["symbol"]] == 0}
        held[f["symbol"]] += f["quantity"] * (1 if f["side"] == "buy" else -1)
    entries = 0
    for legs in by_order.values():  # both legs decided on one bar, in opposite directions
        assert set(legs) == {"AAA", "BBB"}
        assert legs["AAA"]["side"] != legs["BBB"]["side"]
        if legs["AAA"]["opens"] and legs["BBB"]["opens"]:
            entries += 1
            money = {s: f["quantity"] * f["price"] for s, f in legs.items()}
            assert money["BBB"] / money["AAA"] == pytest.approx(1.5, rel=0.25)  # hedge ratio
    assert entries >= 2
