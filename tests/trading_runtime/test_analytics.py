"""Analytics against references: every return metric equals empyrical's to 1e-8 under the
stated conventions (simple returns per bar, 252 a year, risk-free 0 or a given rate, ddof=1 -
empyrical's own defaults, so its functions are called as they are, with the per-bar risk-free
rate); bootstrap intervals are reproducible and cover the estimate; execution quality and
holdings match the hand-computed scenario of test_scenario.py."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from tests.support.scenario import BARS, config
from trading_runtime.analytics import performance as pf
from trading_runtime.analytics.analysis import analyze
from trading_runtime.analytics.bootstrap import bootstrap_intervals, resample_indices
from trading_runtime.analytics.conventions import Conventions
from trading_runtime.runs import run


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    normal = rng.normal(0.0004, 0.012, 750)
    zeros = normal.copy()
    zeros[rng.random(750) < 0.4] = 0.0  # flat bars, as when a strategy is out of the market
    losing = np.r_[rng.normal(0.001, 0.01, 200), -np.abs(rng.normal(0.004, 0.01, 120)),
                   rng.normal(0.0, 0.01, 200)]  # fmt: skip
    heavy = rng.standard_t(3, 1000) * 0.008
    return {"normal": normal, "zeros": zeros, "losing run": losing, "heavy tails": heavy,
            "short": np.array([0.01, -0.02, 0.005])}  # fmt: skip


SERIES = _series()
RATES = [0.0, 0.03]


@pytest.mark.parametrize("rf", RATES)
@pytest.mark.parametrize("name", list(SERIES))
def test_metrics_equal_empyrical(name, rf):
    r = SERIES[name]
    c = Conventions(risk_free=rf)
    per_bar = c.risk_free_per_bar
    benchmark = np.random.default_rng(1).normal(0.0003, 0.01, len(r)) + 0.6 * r
    close = pytest.approx
    assert pf.cagr(r, c) == close(ep.cagr(r), abs=1e-8)
    assert pf.volatility(r, c) == close(ep.annual_volatility(r), abs=1e-8)
    assert pf.sharpe(r, c) == close(ep.sharpe_ratio(r, risk_free=per_bar), abs=1e-8)
    assert pf.sortino(r, c) == close(ep.sortino_ratio(r, required_return=per_bar), abs=1e-8)
    assert pf.downside_deviation(r, c) == close(
        ep.downside_risk(r, required_return=per_bar), abs=1e-8
    )
    assert pf.calmar(r, c) == close(ep.calmar_ratio(r), abs=1e-8, nan_ok=True)
    assert pf.max_drawdown(r) == close(ep.max_drawdown(r), abs=1e-8)
    alpha, beta = pf.alpha_beta(r, benchmark, c)
    ref_alpha, ref_beta = ep.alpha_beta(r, benchmark, risk_free=per_bar)
    assert (alpha, beta) == (close(ref_alpha, abs=1e-8), close(ref_beta, abs=1e-8))
    # empyrical's VaR / CVaR are signed returns at cutoff 1 - level; ours are positive losses
    assert pf.value_at_risk(r, c) == close(-ep.value_at_risk(r, 0.05), abs=1e-8)
    assert pf.expected_shortfall(r, c) == close(-ep.conditional_value_at_risk(r, 0.05), abs=1e-8)
    assert pf.total_return(r) == close(ep.cum_returns_final(r), abs=1e-8)


@pytest.mark.parametrize("name", ["normal", "zeros", "heavy tails"])
def test_rolling_and_monthly_series_equal_empyrical(name):
    r = SERIES[name]
    index = pd.bdate_range("2020-01-01", periods=len(r), tz="UTC")
    returns = pd.Series(r, index=index)
    c = Conventions()
    window = c.rolling_window
    ours = pf.rolling_sharpe(returns, c).to_numpy()[window - 1 :]
    ref = ep.roll_sharpe_ratio(r, window=window)
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    vol = pf.rolling_volatility(returns, c).to_numpy()[window - 1 :]
    np.testing.assert_allclose(vol, ep.roll_annual_volatility(r, window=window), atol=1e-8)
    monthly = pf.monthly_returns(returns).stack()
    reference = ep.aggregate_returns(returns.tz_localize(None), "monthly")
    np.testing.assert_allclose(monthly.to_numpy(), reference.to_numpy(), atol=1e-10)


def test_metrics_without_a_reference_library():
    """Drawdown duration (bars below a previous peak), and quantstats' definitions of hit rate
    (win rate over non-zero bars) and profit factor (gains / losses), by hand."""
    r = np.array([0.1, -0.1, 0.05, 0.02, 0.1, -0.01, 0.0])
    # equity 1.1, .99, 1.0395, 1.0603, 1.1663 (a new peak), 1.1546, 1.1546: 3 bars, then 2
    assert pf.max_drawdown_duration(r) == 3
    assert pf.hit_rate(r) == 4 / 6
    assert pf.profit_factor(r) == pytest.approx(0.27 / 0.11)
    assert pf.profit_factor([0.01, 0.0]) == math.inf and math.isnan(pf.hit_rate([0.0, 0.0]))
    assert math.isnan(pf.sharpe([0.01, 0.01, 0.01]))  # no dispersion: undefined, not 1e15
    c = Conventions(ddof=0, periods_per_year=12)
    assert pf.volatility(r, c) == pytest.approx(np.std(r) * math.sqrt(12), abs=1e-12)


def test_conventions_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("QTIS_ANALYTICS_RISK_FREE", "0.02")
    monkeypatch.setenv("QTIS_ANALYTICS_BOOTSTRAP_PATHS", "200")
    c = Conventions()
    assert (c.risk_free, c.bootstrap_paths, c.periods_per_year) == (0.02, 200, 252)
    assert any("2.00% a year" in line for line in c.describe())
    with pytest.raises(ValueError):
        Conventions(ddof=2)


@pytest.mark.parametrize("method", ["stationary", "moving-block"])
def test_bootstrap_intervals_cover_the_estimate_and_are_reproducible(method):
    r = np.random.default_rng(3).normal(0.0006, 0.01, 2500)
    c = Conventions(bootstrap=method, bootstrap_paths=500)
    first, again = bootstrap_intervals(r, c), bootstrap_intervals(r, c)
    assert first == again
    for name, interval in first.items():
        assert interval.low < interval.value < interval.high, name
    assert first["sharpe"].value == pytest.approx(ep.sharpe_ratio(r), abs=1e-8)
    other = bootstrap_intervals(r, c.model_copy(update={"seed": 1}))
    assert other["sharpe"].low != first["sharpe"].low
    short = bootstrap_intervals(r[:5], c)
    assert math.isnan(short["sharpe"].low)


def test_stationary_resampling_keeps_blocks():
    idx = resample_indices(1000, 50, 20.0, "stationary", np.random.default_rng(0))
    assert idx.shape == (50, 1000) and idx.min() >= 0 and idx.max() < 1000
    continued = np.mean(np.diff(idx, axis=1) % 1000 == 1)
    assert 0.9 < continued < 0.99  # a new block starts with probability 1/20
    moving = resample_indices(100, 3, 10.0, "moving-block", np.random.default_rng(0))
    assert moving.shape == (3, 100) and (np.diff(moving[:, :10], axis=1) == 1).all()


def test_execution_quality_and_holdings_of_the_hand_scenario(hand_market):
    url = hand_market(BARS)
    result = run(url, config("exec"))
    analysis = analyze(url, "exec")
    quality = analysis.execution["main"]
    # buy 100 decided at the close 11.00, filled at 12.018 (open 12), fee 1.24036;
    # sell 100 decided at the close 9.00, filled at 9.48575 (open 9.50), fee 1.18971
    buy = (12.018 - 11.0) * 100 + (2e-4 * 1201.8 + 1.0)
    sell = -(9.48575 - 9.0) * 100 + (2e-4 * 948.575 + 1.0)
    assert quality["implementation_shortfall"] == pytest.approx(buy + sell, abs=1e-9)
    assert quality["implementation_shortfall_bps"] == pytest.approx(
        (buy + sell) / (1100 + 900) * 1e4, abs=1e-8
    )
    delay = ((12.0 - 11.0) * 100 - (9.5 - 9.0) * 100) / 2000 * 1e4
    assert quality["shortfall_delay_bps"] == pytest.approx(delay, abs=1e-8)
    parts = ("shortfall_delay_bps", "shortfall_execution_bps", "shortfall_fees_bps")
    assert sum(quality[p] for p in parts) == pytest.approx(quality["implementation_shortfall_bps"])
    # half spread 5 + slippage 10 bps on both fills, measured against the reference and open
    assert quality["slippage_bps"] == pytest.approx(15.0, abs=1e-8)
    assert quality["market_impact_bps"] == pytest.approx(15.0, abs=1e-8)
    assert (quality["fill_rate"], quality["orders_filled"], quality["decisions"]) == (1.0, 1.0, 2)
    held = analysis.holdings["main"]
    day = pd.Timestamp("2024-01-04", tz="UTC")
    assert held.quantities.loc[day, "TEST"] == 100
    assert held.weights.loc[day, "TEST"] == pytest.approx(1200 / 99_996.96, abs=1e-6)
    assert held.gross_exposure.iloc[-1] == 0 and analysis.metrics["main"]["time_in_market"] == 2 / 6
    # the journaled equity is cash plus these values
    curve = [p["equity"]["main"] for p in result.equity_curve]
    assert held.equity.tolist() == curve
    # the run's own metrics are empyrical's on its equity curve
    returns = pf.curve_returns(100_000, curve)
    metrics = result.metrics["main"]
    assert metrics["sharpe"] == pytest.approx(ep.sharpe_ratio(returns), abs=1e-8)
    assert metrics["max_drawdown"] == pytest.approx(ep.max_drawdown(returns), abs=1e-8)
    assert metrics["cagr"] == pytest.approx(ep.cagr(returns), abs=1e-8)
    # the benchmark holds the one symbol from the first close
    closes = np.array([b[4] for b in BARS])
    expected = np.r_[0.0, closes[1:] / closes[:-1] - 1]
    np.testing.assert_allclose(analysis.benchmark.to_numpy(), expected, atol=1e-12)
    alpha, beta = ep.alpha_beta(returns, expected)
    assert analysis.metrics["main"]["beta"] == pytest.approx(beta, abs=1e-8)
    assert analysis.metrics["main"]["alpha"] == pytest.approx(alpha, abs=1e-8)
