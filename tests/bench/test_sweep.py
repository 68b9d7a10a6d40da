"""bench.sweep's fill comparison: identical on a small grid where both sides trade the same
rule, and a difference is reported (a comparison that cannot fail would prove nothing)."""

from __future__ import annotations

import pytest

from bench import sweep as bench
from trading_runtime.sweep import Grid


@pytest.fixture(scope="module")
def small():
    market = bench.market_of(3, 300)
    grid = Grid((5, 10), (20, 30), "fixed", (bench.QUANTITY,))
    sweep, _ = bench.ours(market, grid)
    portfolio, _ = bench.theirs(market, grid)
    return market, grid, sweep, portfolio


def test_the_sweep_and_vectorbt_fill_alike(small):
    market, _, sweep, portfolio = small
    fills = bench.compare_fills(sweep, portfolio, market)
    assert fills["identical"] and fills["cells"] == 4 and fills["fills"] > 20


def test_a_difference_in_fills_is_reported(small, monkeypatch):
    market, grid, sweep, _ = small
    monkeypatch.setattr(bench, "COSTS", bench.COSTS.model_copy(update={"slippage_bps": 3.0}))
    other, _ = bench.theirs(market, grid)
    fills = bench.compare_fills(sweep, other, market)
    assert not fills["identical"] and fills["cells_differing"] == 4
    assert fills["first_difference"]["ours"][0][4] != fills["first_difference"]["vbt"][0][4]
