"""Portfolio construction: each optimizer's weights obey the constraints and do what the method
promises (on skfolio's offline S&P 500 sample), and the engine trades to them, journaling each
rebalance."""

from __future__ import annotations

import itertools
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skfolio.datasets import load_sp500_dataset
from skfolio.preprocessing import prices_to_returns

from trading_runtime import events as ev
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.portfolio.optimizers import PortfolioConfig, PortfolioOptimizer
from trading_runtime.runs import run

METHODS = ["equal", "min-variance", "risk-parity", "hrp", "mean-cvar", "black-litterman"]
TOL = 1e-6


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    return prices_to_returns(load_sp500_dataset()).iloc[-504:]


def sectors_of(columns) -> dict[str, str]:
    return {a: "tech" if i % 3 == 0 else "other" for i, a in enumerate(columns)}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_obeys_budget_caps_and_sectors(returns, method):
    config = PortfolioConfig(method=method, max_weight=0.2, sector_caps={"tech": 0.3})
    sectors = sectors_of(returns.columns)
    w = PortfolioOptimizer(config, sectors).fit(returns).weights_
    tech = np.array([sectors[a] == "tech" for a in returns.columns])
    assert w.min() >= -TOL and w.max() <= 0.2 + TOL
    assert w.sum() <= 0.98 + TOL
    assert w[tech].sum() <= 0.3 + TOL
    if method not in ("hrp", "equal"):  # these leave a capped sector's excess in cash
        assert w.sum() == pytest.approx(0.98, abs=1e-4)


def test_minimum_variance_has_the_least_variance(returns):
    cov = np.cov(returns.to_numpy(), rowvar=False)
    config = PortfolioConfig(method="min-variance", covariance="empirical", max_weight=1.0)
    w = PortfolioOptimizer(config).fit(returns).weights_
    rng = np.random.default_rng(0)
    others = rng.dirichlet(np.ones(len(w)), size=200) * 0.98
    assert w @ cov @ w <= (np.einsum("ij,jk,ik->i", others, cov, others)).min() + 1e-12


def test_risk_parity_equalizes_risk_contributions(returns):
    config = PortfolioConfig(method="risk-parity", covariance="empirical", max_weight=1.0)
    w = PortfolioOptimizer(config).fit(returns).weights_
    cov = np.cov(returns.to_numpy(), rowvar=False)
    contributions = w * (cov @ w)
    assert contributions.std() / contributions.mean() < 1e-3


def test_black_litterman_moves_weight_towards_a_confident_view(returns):
    config = PortfolioConfig(method="black-litterman", max_weight=0.5)
    optimizer = PortfolioOptimizer(config)
    prior = optimizer.fit(returns).weights_.copy()
    views = np.full(returns.shape[1], np.nan)
    views[5] = 0.004  # 0.4% a day: a strong view on one stock
    confident = optimizer.fit(returns, views=views, confidence=0.9).weights_.copy()
    doubtful = optimizer.fit(returns, views=views, confidence=0.01).weights_.copy()
    assert confident[5] > doubtful[5] + 0.05
    assert abs(doubtful[5] - prior[5]) < abs(confident[5] - prior[5])


def test_the_signal_picks_direction_and_long_short_is_refused_where_it_cannot_be(returns):
    n = returns.shape[1]
    direction = np.where(np.arange(n) % 2, 1.0, -1.0)
    direction[:4] = 0.0
    config = PortfolioConfig(method="min-variance", long_short=True, max_weight=0.3)
    w = PortfolioOptimizer(config).fit(returns, direction).weights_
    assert np.all(w[:4] == 0)
    assert np.all(w * direction >= -TOL)
    assert w.sum() == pytest.approx(0.98, abs=1e-4)
    long_only = PortfolioOptimizer(PortfolioConfig(method="hrp")).fit(returns, direction).weights_
    assert np.all(long_only[direction <= 0] == 0)
    with pytest.raises(ValueError, match="risk-parity is long-only"):
        PortfolioConfig(method="risk-parity", long_short=True)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["min-variance", "risk-parity", "hrp", "mean-cvar"]),
    budget=st.floats(0.05, 1.0),
    seed=st.integers(0, 10_000),
)
def test_a_turnover_budget_is_never_exceeded(returns, method, budget, seed):
    rng = np.random.default_rng(seed)
    previous = rng.dirichlet(np.ones(returns.shape[1])) * 0.98
    config = PortfolioConfig(method=method, turnover=budget, max_weight=1.0)
    optimizer = PortfolioOptimizer(config).fit(returns, previous=previous)
    assert optimizer.turnover_ <= budget + 1e-9
    assert np.abs(optimizer.weights_ - previous).sum() == pytest.approx(optimizer.turnover_)
    assert optimizer.weights_.sum() <= 0.98 + TOL


def test_the_engine_trades_to_the_optimizer_weights_and_journals_them(market):
    portfolio = {"method": "risk-parity", "rebalance_every": 21, "max_weight": 0.6}
    strategy = StrategyConfig(name="rp", signal="buy-and-hold", portfolio=portfolio)
    config = RunConfig(stream="rp-bt", strategies=[strategy], start=date(2012, 1, 3),
                       free_costs=True)  # fmt: skip
    report = run(market, config)
    journal = Journal(market, "rp-bt")
    try:
        rebalances = [e.to_payload() for e in journal.read(types=[ev.PORTFOLIO_REBALANCED])]
        closes = {e.step: e.to_payload() for e in journal.read(types=[ev.BAR_CLOSED])}
    finally:
        journal.close()
    steps = [r["step"] for r in rebalances]
    assert len(steps) >= 10 and all(b - a == 21 for a, b in itertools.pairwise(steps[1:]))
    assert all(r["method"] == "risk-parity" for r in rebalances)
    assert all(sum(r["weights"].values()) == pytest.approx(0.98, abs=1e-4) for r in rebalances)
    # the book a bar after a rebalance holds its weights (up to lot rounding and price moves)
    last = rebalances[-2]
    marks = closes[last["step"] + 1]["marks"]
    holdings = {}
    for fill in report.fills:
        if fill["ts"] <= closes[last["step"] + 1]["ts"]:
            sign = 1 if fill["side"] == "buy" else -1
            holdings[fill["symbol"]] = holdings.get(fill["symbol"], 0) + sign * fill["quantity"]
    equity = closes[last["step"] + 1]["equity"]["rp"]
    for symbol, weight in last["weights"].items():
        held = holdings.get(symbol, 0) * marks[symbol] / equity
        assert held == pytest.approx(weight, abs=0.03), symbol
    assert report.metrics["rp"]["orders"] > 10


def test_a_correlation_breakdown_raises_a_journaled_risk_alert(hand_market):
    """Two symbols move independently for 300 bars, then as one for the last 60: rebalances
    journal the recent correlation, and a risk_alert appears once, and only once, the recent
    bars are the correlated ones."""
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2010-01-04", periods=360)
    moves = rng.normal(0, 0.01, (360, 2))
    moves[300:, 1] = moves[300:, 0]  # from bar 300 on, B moves with A
    for k, symbol in enumerate(("A", "B")):
        close = 100 * np.cumprod(1 + moves[:, k])
        rows = [(d, c, c * 1.01, c * 0.99, c, 1e6) for d, c in zip(days, close, strict=True)]
        url = hand_market(rows, symbol)
    portfolio = {"method": "equal", "rebalance_every": 5, "lookback": 252,
                 "correlation_recent": 42, "correlation_threshold": 0.4}  # fmt: skip
    strategy = StrategyConfig(name="eq", signal="buy-and-hold", portfolio=portfolio)
    run(url, RunConfig(stream="corr", strategies=[strategy], warmup_bars=0, free_costs=True))
    journal = Journal(url, "corr")
    try:
        rebalances = [e.to_payload() for e in journal.read(types=[ev.PORTFOLIO_REBALANCED])]
        alerts = [e.to_payload() for e in journal.read(types=[ev.RISK_ALERT])]
    finally:
        journal.close()
    checked = [r for r in rebalances if r["correlation"] is not None]
    assert checked and all(abs(r["correlation"]) < 0.4 for r in checked if r["ts"] < "2011-02")
    assert alerts and all(a["kind"] == "correlation_breakdown" for a in alerts)
    first = min(pd.Timestamp(a["ts"]) for a in alerts)
    assert days[300].tz_localize("UTC") < first <= days[300 + 42].tz_localize("UTC")
    assert "correlation breakdown" in alerts[0]["message"]
    assert {a["ts"] for a in alerts} == {r["ts"] for r in checked if r["correlation_alert"]}


def test_cli_backtest_with_a_portfolio_and_its_refusals(market, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    runner = CliRunner()
    args = ["trade", "backtest", "--signal", "buy-and-hold", "--start", "2012-06-01"]
    out = tmp_path / "hrp.json"
    cap = "Information Technology=0.5"
    result = runner.invoke(
        app, [*args, "--portfolio", "hrp", "--sector-cap", cap, "--json-out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "Sharpe" in result.output
    assert out.exists()
    journal = Journal(market, json.loads(out.read_text())["stream"])
    try:
        weights = [e.weights for e in journal.read(types=[ev.PORTFOLIO_REBALANCED])]
    finally:
        journal.close()
    assert weights
    tech = [sum(v for s, v in w.items() if s != "GOOG") for w in weights]
    assert max(tech) <= 0.5 + 1e-6
    for bad, message in [
        (["--portfolio", "risk-parity", "--long-short"], "risk-parity is long-only"),
        (["--portfolio", "sharpe-magic"], "portfolio.method"),
        (["--portfolio", "hrp", "--sector-cap", "tech"], "expected SECTOR=MAX_WEIGHT"),
    ]:
        refused = runner.invoke(app, [*args, *bad], env=env)
        said = " ".join(refused.output.split())
        assert refused.exit_code == 2 and message in said, said
