"""Analytics of a run: the conventions come from the environment (QTIS_ANALYTICS_*); execution
quality and holdings match the hand-computed scenario of test_scenario.py, and the run's own
metrics are empyrical's on its equity curve (the metrics themselves: tests/quant)."""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from quant import performance as pf
from tests.support.scenario import BARS, config
from trading_runtime.analytics.analysis import analyze
from trading_runtime.analytics.conventions import ConventionsSettings, conventions
from trading_runtime.runs import run
from trading_runtime.settings import RiskReportSettings


def test_conventions_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("QTIS_ANALYTICS_RISK_FREE", "0.02")
    monkeypatch.setenv("QTIS_ANALYTICS_BOOTSTRAP_PATHS", "200")
    c = conventions(periods_per_year=12)
    assert (c.risk_free, c.bootstrap_paths, c.periods_per_year) == (0.02, 200, 12)
    assert any("2.00% a year" in line for line in c.describe())
    with pytest.raises(ValueError):
        ConventionsSettings(ddof=2)


def test_execution_quality_and_holdings_of_the_hand_scenario(hand_market, monkeypatch):
    url = hand_market(BARS)
    result = run(url, config("exec"))
    monkeypatch.setenv("QTIS_TRADE_BARS_PER_YEAR", "12")  # the conventions passed in win
    analysis = analyze(url, "exec", conventions(periods_per_year=252), RiskReportSettings())
    assert analysis.conventions.periods_per_year == 252
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
