"""Portfolio risk: portfolio VaR/ES against their definitions and the series estimators
(tests/quant/test_risk.py), factor attribution, the correlation-breakdown alert, stress tests,
and VaR/ES limits in the pre-trade risk engine."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.covariance import LedoitWolf

from quant.risk import risk_measures
from tests.support.book import INSTRUMENTS, TS, close_bar, new_book, send, trade
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.domain import Order, Side
from trading_runtime.history import ReturnWindow
from trading_runtime.instruments import Instrument
from trading_runtime.portfolio.attribution import (
    factor_attribution,
    load_factor_etfs,
    load_fama_french,
)
from trading_runtime.portfolio.correlation import correlation_breakdown, rolling_correlation
from trading_runtime.portfolio.risk import portfolio_var_es
from trading_runtime.portfolio.stress import apply_shocks, historical_stress, sector_exposure
from trading_runtime.risk import RiskEngine
from trading_runtime.runs import run


@pytest.fixture(scope="module")
def normal_returns() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0004, 0.012, 2_000)


# --- portfolio VaR / ES (the series estimators: tests/quant/test_risk.py) ---------------


def test_nans_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        portfolio_var_es(np.full((5, 2), np.nan), [1.0, 1.0])


def test_portfolio_of_one_asset_is_the_series(normal_returns):
    """Same seed, same normal draws; the portfolio's Ledoit-Wolf variance of one asset is the
    ddof=0 sample variance, the series' the ddof=1 one: they differ by sqrt(n/(n-1))."""
    r = normal_returns
    for level, horizon in ((0.95, 1), (0.99, 10)):
        single = risk_measures(r, level, horizon, "monte-carlo", paths=20_000, seed=5)
        portfolio = portfolio_var_es(r[:, None], [1.0], level, horizon, "monte-carlo", 20_000, 5)
        assert portfolio.var == pytest.approx(single.var, rel=1e-3)
        assert portfolio.es == pytest.approx(single.es, rel=1e-3)
    assert portfolio_var_es(r[:, None], [2.0], 0.99) == pytest.approx(
        [2 * x for x in risk_measures(r, 0.99)], abs=1e-12
    )


def test_portfolio_methods_agree_with_their_definitions():
    rng = np.random.default_rng(2)
    common = rng.normal(0, 0.01, (1_500, 1))
    frame = pd.DataFrame(common + rng.normal(0, 0.01, (1_500, 6)), columns=list("ABCDEF"))
    notional = pd.Series({"A": 1e5, "C": -4e4, "F": 2e4})
    w = notional.reindex(frame.columns, fill_value=0).to_numpy()
    historical = portfolio_var_es(frame, notional, 0.99)
    assert historical == pytest.approx(risk_measures(frame.to_numpy() @ w, 0.99), abs=1e-9)
    cov = LedoitWolf().fit(frame.to_numpy()).covariance_
    mean, sd = frame.mean().to_numpy() @ w, math.sqrt(w @ cov @ w)
    z = stats.norm.ppf(0.99)
    assert portfolio_var_es(frame, notional, 0.99, method="parametric").var == pytest.approx(
        sd * z - mean
    )
    for distribution in ("normal", "t"):
        simulated = portfolio_var_es(
            frame, notional, 0.99, method="monte-carlo", paths=50_000, distribution=distribution
        )
        assert simulated.var == pytest.approx(sd * z - mean, rel=0.06), distribution
    with pytest.raises(ValueError, match="have no returns"):
        portfolio_var_es(frame, {"ZZZ": 1.0})


# --- attribution ----------------------------------------------------------------------------


def test_attribution_recovers_known_betas():
    rng = np.random.default_rng(4)
    days = pd.bdate_range("2020-01-01", periods=750)
    factors = pd.DataFrame(rng.normal(0, 0.01, (750, 3)), index=days, columns=["m", "s", "v"])
    noise = rng.normal(0, 0.002, 750)
    returns = pd.Series(0.0003 + factors @ np.array([0.8, -0.3, 0.5]) + noise, index=days)
    result = factor_attribution(returns.tz_localize("UTC"), factors)  # UTC bars meet dates
    assert result.observations == 750
    assert result.betas.to_numpy() == pytest.approx([0.8, -0.3, 0.5], abs=0.02)
    assert result.alpha == pytest.approx(0.0003, abs=1e-4) and result.alpha_t > 2
    assert result.r_squared > 0.95
    assert result.contributions.sum() == pytest.approx(result.total, abs=1e-10)


def test_attribution_on_the_offline_factor_etfs():
    factors = load_factor_etfs()
    assert list(factors.columns) == ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"]
    noise = np.random.default_rng(6).normal(0, 0.001, len(factors))
    strategy = 0.6 * factors["MTUM"] + 0.4 * factors["USMV"] + noise
    result = factor_attribution(strategy, factors)
    assert result.betas["MTUM"] == pytest.approx(0.6, abs=0.05)
    assert result.betas["USMV"] == pytest.approx(0.4, abs=0.05)
    assert result.r_squared > 0.9


FAMA_FRENCH = """This file was created by CMPT_ME_BEME_RETS using the 202401 CRSP database.
The 1-month TBill return is from Ibbotson and Associates Inc.

,Mkt-RF,SMB,HML,RF
20240102,   -0.71,   -0.24,    1.04,    0.02
20240103,   -1.06,   -0.37,    0.53,    0.02
20240104,   -0.36,    0.38,   -0.11,    0.02

Copyright 2024 Kenneth R. French
"""


def test_fama_french_file(tmp_path):
    path = tmp_path / "ff.csv"
    path.write_text(FAMA_FRENCH)
    factors = load_fama_french(path)
    assert list(factors.columns) == ["Mkt-RF", "SMB", "HML", "RF"]
    assert factors.index[0] == pd.Timestamp("2024-01-02")
    assert factors.loc["2024-01-03", "Mkt-RF"] == pytest.approx(-0.0106)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,close\n2024-01-02,10\n")
    with pytest.raises(ValueError, match=r"no header row.*not a Ken French CSV"):
        load_fama_french(bad)
    bad.write_text(FAMA_FRENCH.replace("0.53", "n/a"))
    with pytest.raises(ValueError, match=r"bad.csv:6: a value is not a number"):
        load_fama_french(bad)


# --- correlation ----------------------------------------------------------------------------


def test_correlation_breakdown_alert():
    rng = np.random.default_rng(8)
    calm = rng.normal(0, 0.01, (300, 5))
    stressed = rng.normal(0, 0.01, (30, 1)) * 3 + rng.normal(0, 0.01, (30, 5))
    broke = pd.DataFrame(np.vstack([calm, stressed]))
    alert = correlation_breakdown(broke, recent=30, baseline=250, threshold=0.3)
    assert alert.alert and alert.change > 0.5 and "breakdown" in alert.message
    stable = correlation_breakdown(pd.DataFrame(calm), recent=30, baseline=250, threshold=0.3)
    assert not stable.alert and abs(stable.change) < 0.15
    rolling = rolling_correlation(broke, window=20)
    assert rolling.shape == (330 * 5, 5)
    assert rolling.loc[329].to_numpy().diagonal() == pytest.approx(np.ones(5))


# --- stress ---------------------------------------------------------------------------------


def test_user_shocks_take_the_most_specific_rule():
    holdings = {"AAPL": 100_000.0, "MSFT": 50_000.0, "XOM": -20_000.0}
    sectors = {"AAPL": "tech", "MSFT": Instrument("MSFT", sector="tech"), "XOM": "energy"}
    result = apply_shocks(holdings, {"AAPL": -0.2, "sector:tech": -0.1, "all": -0.05}, sectors)
    # AAPL its own -20%, MSFT its sector's -10%, XOM (short) everything's -5%
    assert result.by_symbol == {"AAPL": -20_000.0, "MSFT": -5_000.0, "XOM": 1_000.0}
    assert result.pnl == -24_000.0
    with pytest.raises(ValueError, match="names no holding"):
        apply_shocks(holdings, {"sector:utilities": -0.1}, sectors)
    exposure = sector_exposure(holdings, sectors)
    assert exposure.loc["tech"].to_dict() == {
        "long": 150_000.0,
        "short": 0.0,
        "net": 150_000.0,
        "gross": 150_000.0,
    }
    assert exposure.loc["energy", "short"] == -20_000.0


def test_historical_stress_replays_the_worst_windows():
    days = pd.bdate_range("2024-01-01", periods=12)
    a = [0.0] * 12
    a[3], a[4] = -0.10, -0.10  # the worst 2 bars: A loses 19%
    a[8] = -0.05
    returns = pd.DataFrame({"A": a, "B": [0.01] * 12}, index=days)
    worst = historical_stress(returns, {"A": 1_000.0, "B": -500.0}, worst=2, horizon=2)
    first = worst.iloc[0]
    assert (first["start"], first["end"]) == (days[3], days[4])
    assert first["pnl"] == pytest.approx(1_000 * (0.9 * 0.9 - 1) - 500 * (1.01**2 - 1))
    assert first["A"] == pytest.approx(-0.19)
    second = worst.iloc[1]  # the next worst window that does not overlap the first
    assert second["start"] in (days[7], days[8]) and second["pnl"] < 0


# --- the pre-trade VaR/ES limit -------------------------------------------------------------


def engine_with_history(seed: int = 1) -> tuple[RiskEngine, np.ndarray]:
    """A risk engine reading a window of 60 random bars of A, B and C."""
    risk = RiskEngine(INSTRUMENTS)
    window = ReturnWindow(3, 60)
    prices = 100 * np.cumprod(1 + np.random.default_rng(seed).normal(0, 0.02, (61, 3)), axis=0)
    for row in prices:
        window.update(row)
    risk.use_returns(window, ["A", "B", "C"])
    return risk, window.matrix()  # 61 closes: 60 returns, all kept


def test_an_order_that_pushes_var_over_the_limit_is_denied():
    loose = {"max_symbol_weight": None, "max_position_notional": None}
    book = new_book(**loose)
    close_bar(book, 0, {"A": 100.0, "B": 100.0, "C": 100.0})
    trade(book, Order("held", "a", "A", Side.BUY, 300.0, created=TS), 100.0, 0)
    close_bar(book, 1, {"A": 100.0, "B": 100.0, "C": 100.0})
    risk, rows = engine_with_history()
    equity = book.accounts["a"].equity_at(book.marks)
    unit = -np.percentile(rows[:, 0], 1)  # 99% 1-bar VaR of 1 of notional in A
    limit = unit * 35_000 / equity  # the 30,000 held pass, 40,000 would not
    book.accounts["a"].limits |= {"max_var": limit}

    def order(n, side, qty):
        return Order(n, "a", "A", side, qty, created=TS)

    small = order("small", Side.BUY, 20.0)  # to 32,000
    assert risk.check(small, book, 100.0) is None
    send(book, small)
    denial = risk.check(order("big", Side.BUY, 80.0), book, 100.0)  # with it: 40,000
    assert denial is not None and denial.check == "max_var", denial
    assert f"{unit * 40_000 / equity:.2%} of equity" in denial.reason
    assert f"limit {limit:.2%}" in denial.reason
    assert f"{unit * 32_000 / equity:.2%} before" in denial.reason
    assert risk.check(order("cut", Side.SELL, 100.0), book, 100.0) is None  # reduces: passes
    book.accounts["a"].limits |= {"max_var": None, "max_es": limit}
    assert risk.check(order("big", Side.BUY, 80.0), book, 100.0).check == "max_es"


def test_var_limit_denies_orders_in_a_backtest(hand_market):
    start = date(2024, 1, 1)
    moves = np.random.default_rng(9).normal(0, 0.03, 40)
    closes = 50 * np.cumprod(1 + moves)
    rows = [
        ((start + timedelta(days=k)).isoformat(), c, c * 1.01, c * 0.99, c, 1e7)
        for k, c in enumerate(closes)
    ]
    url = hand_market(rows)

    def config(stream: str, max_var: float) -> RunConfig:
        limits = {"max_var": max_var, "var_min_bars": 10, "reducing_drawdown": None}
        strategy = StrategyConfig(
            signal="buy-and-hold", sizing="fixed", quantity=500, capital=100_000, limits=limits
        )
        first = start + timedelta(days=20)
        return RunConfig(stream=stream, strategies=[strategy], start=first, warmup_bars=20)

    tight = run(url, config("var-tight", 0.001))  # 25,000 at 3% a day: ~1.7% of equity
    assert tight.denials.get("max_var", 0) >= 10
    assert not tight.fills
    loose = run(url, config("var-loose", 0.05))
    assert loose.fills and "max_var" not in loose.denials
