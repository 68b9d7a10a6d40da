"""Futures through the engine: a strategy holds the root, the engine rolls it from contract to
contract a set number of trading days before expiry, with margin checked before each order."""

from __future__ import annotations

from datetime import date

import pytest

from demo.futures import FUTURES_LIMITS, chain_bars
from quant.futures import trading_days_left
from quant.futures_chain import synthetic_chain
from tests.support.bars import load_bars
from tests.support.db import copy_database
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import run

CHAIN = synthetic_chain("ES", "2022-01-03", bars=300, seed=4)


@pytest.fixture
def futures_market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, chain_bars(CHAIN))
    return url


def test_the_root_is_held_in_one_contract_and_rolled_before_expiry(futures_market):
    strategy = StrategyConfig(name="es", signal="buy-and-hold", sizing="fixed", quantity=2,
                              roll_days=5, limits=FUTURES_LIMITS)  # fmt: skip
    config = RunConfig(
        stream="es", symbols=CHAIN.symbols, strategies=[strategy], start=date(2022, 2, 1),
        warmup_bars=0, free_costs=True,
    )  # fmt: skip
    report = run(futures_market, config)
    assert not report.denials
    expiry = {c.symbol: c.expiry for c in CHAIN.contracts}
    position: dict[str, float] = {}
    for fill in report.fills:
        sign = 1 if fill["side"] == "buy" else -1
        position[fill["symbol"]] = position.get(fill["symbol"], 0) + sign * fill["quantity"]
        decided = date.fromisoformat(fill["client_id"].split("-")[1][:8])
        if sign < 0:  # a roll out: decided on the first bar with 5 trading days or fewer left
            assert trading_days_left(decided, expiry[fill["symbol"]]) <= 5
        else:
            assert trading_days_left(decided, expiry[fill["symbol"]]) > 5
    held = {s: q for s, q in position.items() if q}
    assert len(held) == 1 and list(held.values()) == [2.0]  # one contract, the root's size
    rolled_out = [f["symbol"] for f in report.fills if f["side"] == "sell"]
    assert rolled_out == ["ESH22", "ESM22", "ESU22", "ESZ22"][: len(rolled_out)]
    assert len(rolled_out) >= 3  # ~14 months of bars: several quarterly rolls
    tags = [report.book.orders[f["client_id"]].tag for f in report.fills]
    assert tags == ["entry"] + ["roll"] * (len(tags) - 1)  # journaled as rolls


def test_futures_margin_is_checked_on_the_roll(futures_market):
    """2 contracts need 24,000 of margin; with 20,000 of capital the entry is denied with the
    margin check's reason."""
    strategy = StrategyConfig(name="small", signal="buy-and-hold", sizing="fixed", quantity=2,
                              capital=20_000, limits=FUTURES_LIMITS)  # fmt: skip
    config = RunConfig(stream="small", symbols=CHAIN.symbols, strategies=[strategy],
                       start=date(2022, 2, 1), warmup_bars=0)  # fmt: skip
    report = run(futures_market, config)
    assert not report.fills
    assert set(report.denials) == {"futures_margin"}
    assert "2 contracts x 12,000.00 initial margin" in report.denial_examples["futures_margin"]
