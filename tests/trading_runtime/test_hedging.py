"""The beta hedge: exact betas on hand-made returns, a band that holds the hedge still until
the book's beta drifts out of it, and a hedged book through the real engine as betas move."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tests.support.bars import load_bars
from tests.support.cointegrated import as_bars, factor_logs
from tests.support.db import copy_database
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.hedging import BetaHedge
from trading_runtime.history import ReturnWindow
from trading_runtime.runs import run


def window_of(returns: np.ndarray) -> ReturnWindow:
    """A return window that has seen ``returns`` (bars, symbols)."""
    window = ReturnWindow(returns.shape[1], len(returns) + 1)
    close = np.full(returns.shape[1], 100.0)
    window.update(close)
    for r in returns:
        close = close * (1 + r)
        window.update(close)
    return window


def hedge_of(returns: np.ndarray, **options) -> BetaHedge:
    return BetaHedge(0, window_of(returns), np.ones(returns.shape[1]), window=50, **options)


MARKET = np.random.default_rng(2).normal(0, 0.01, 50)
BAR = None  # the hedge reads prices, not the bar


def test_betas_are_the_regression_slopes_on_the_hedge():
    returns = np.column_stack([MARKET, 2.0 * MARKET, -0.5 * MARKET + 0.001])
    assert hedge_of(returns).betas() == pytest.approx([1.0, 2.0, -0.5])


def test_inside_the_band_the_hedge_holds_outside_it_is_resized_to_the_target():
    hedge = hedge_of(np.column_stack([MARKET, 2.0 * MARKET]), band=0.1)
    price = np.array([50.0, 100.0])
    # 100 shares at beta 2: 20,000 of beta money on 100,000 equity; the hedge holds -380
    # shares (-19,000): drift 1,000 / 100,000 = 0.01, inside the band - kept
    kept = hedge.targets(np.array([0.0, 100.0]), BAR, price, np.array([-380.0, 100.0]), 100_000)
    assert kept == pytest.approx([-380.0, 100.0])
    # the book doubles to 200 shares: drift (40,000 - 19,000) / 100,000 = 0.21 > 0.1, so the
    # hedge goes to -40,000 / 50 = -800 shares, beta 0 exactly
    moved = hedge.targets(np.array([0.0, 200.0]), BAR, price, np.array([-380.0, 100.0]), 100_000)
    assert moved == pytest.approx([-800.0, 200.0])
    assert hedge.exposure(moved, price, hedge.betas()) == pytest.approx(0.0, abs=1e-6)


def test_a_target_beta_and_an_unknown_beta():
    hedge = hedge_of(np.column_stack([MARKET, MARKET]), band=0.05, target_beta=0.5)
    price = np.array([10.0, 10.0])
    out = hedge.targets(np.array([0.0, 1000.0]), BAR, price, np.zeros(2), 10_000)
    assert out[0] == pytest.approx(-500.0)  # 10,000 of beta money, 5,000 of it hedged
    few = BetaHedge(0, window_of(np.column_stack([MARKET[:5], MARKET[:5]])), np.ones(2),
                    window=50, min_bars=20)  # fmt: skip
    unchanged = few.targets(np.array([0.0, 1000.0]), BAR, price, np.array([-7.0, 0.0]), 10_000)
    assert unchanged[0] == -7.0  # too few bars to know the beta: no new hedge


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="band must be positive"):
        hedge_of(np.zeros((50, 2)), band=0.0)
    with pytest.raises(ValueError, match="allow_short"):
        StrategyConfig(signal="buy-and-hold", hedge={"symbol": "MKT"})


BARS = 420
BETAS = np.column_stack([np.where(np.arange(BARS) < 260, 0.5, 1.5), np.full(BARS, 1.0)])


@pytest.fixture
def factor_market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, as_bars(factor_logs(BARS, BETAS), ["MKT", "S1", "S2"]))
    return url


def test_the_engine_keeps_a_hedged_book_within_its_band_as_betas_move(factor_market):
    strategy = StrategyConfig(
        name="hedged",
        signal="buy-and-hold",
        sizing="equal",
        capital=300_000,
        hedge={"symbol": "MKT", "window": 40, "band": 0.05},
        limits={
            "allow_short": True,
            "max_gross_exposure": 2.0,
            "max_sector_weight": 2.0,
            "max_symbol_weight": 1.0,
        },
    )
    config = RunConfig(
        stream="hedged", symbols=["MKT", "S1", "S2"], strategies=[strategy],
        start=date(2020, 4, 1), warmup_bars=60, free_costs=True,
    )  # fmt: skip
    report = run(factor_market, config)
    assert not report.denials  # the limits leave room for the hedge: what trades is the overlay
    hedges = [f for f in report.fills if f["symbol"] == "MKT"]
    assert all(f["side"] == "sell" for f in hedges[:1])  # a long book is hedged short
    assert 2 <= len(hedges) <= 40  # re-hedged as the beta moved, not every bar
    late = [f for f in hedges if f["ts"] >= "2020-12-28"]  # S1's beta tripled at bar 260
    assert late, [(f["ts"], f["quantity"]) for f in hedges]
    book = report.book.accounts["hedged"]
    logs = factor_logs(BARS, BETAS)
    price = dict(zip(["MKT", "S1", "S2"], np.exp(logs[-1]), strict=True))
    true_beta = {"MKT": 1.0, "S1": 1.5, "S2": 1.0}
    exposure = sum(p.quantity * price[s] * true_beta[s] for s, p in book.positions.items())
    assert abs(exposure / book.equity) <= 0.05 + 0.03  # the band, and the betas' estimation
