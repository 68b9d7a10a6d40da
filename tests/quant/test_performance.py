"""Return metrics against references: every metric equals empyrical's to 1e-8 under the stated
conventions (simple returns per bar, 252 a year, risk-free 0 or a given rate, ddof=1 -
empyrical's own defaults, so its functions are called as they are, with the per-bar risk-free
rate); where empyrical has none, by hand."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from quant import performance as pf
from quant.conventions import Conventions


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


def test_conventions_are_checked():
    assert Conventions(risk_free=0.02).describe()[2].startswith("Risk-free rate: 2.00% a year")
    for bad in ({"ddof": 2}, {"var_level": 1.0}, {"bootstrap": "iid"}, {"periods_per_year": 0}):
        with pytest.raises(ValueError):
            Conventions(**bad)
