"""The fast solves (trading_runtime/portfolio/solvers.py) give skfolio's own solves' weights:
within 1e-4 of gross weight (L1) on seeded factor-model returns, with the default constraints,
sector caps and long/short wherever the method takes them. skfolio's problems are solved to
the same tight tolerances here: at its default ones a min-variance solve stops up to ~1e-3 of
gross weight from its optimum, which would hide a difference of the optimum itself."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from skfolio import RiskMeasure
from skfolio.optimization import RiskBudgeting

from trading_runtime.portfolio.correlation import mean_pairwise_correlation
from trading_runtime.portfolio.optimizers import PortfolioConfig, PortfolioOptimizer
from trading_runtime.portfolio.solvers import TIGHT, risk_parity
from warehouse.providers import SyntheticMarket

L1 = 1e-4
SEEDS = [0, 1, 2]


def factor_returns(n: int, seed: int, bars: int = 252) -> pd.DataFrame:
    """Daily returns of n assets driven by 3 factors, with per-asset noise and drift."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (bars, 3))
    loadings = rng.normal(1.0, 0.5, (3, n))
    noise = rng.normal(0.0, 0.02, (bars, n)) * rng.uniform(0.5, 2.0, n)
    drift = rng.normal(3e-4, 5e-4, n)
    return pd.DataFrame(factors @ loadings + noise + drift, columns=[f"S{i:03d}" for i in range(n)])


def sectors_of(columns) -> dict[str, str]:
    return {a: "tech" if i % 3 == 0 else "other" for i, a in enumerate(columns)}


def both(config: PortfolioConfig, returns: pd.DataFrame, **fit) -> tuple[np.ndarray, np.ndarray]:
    """The fast path's weights and skfolio's as it states the problem, on the same inputs."""
    sectors = sectors_of(returns.columns)
    fast = PortfolioOptimizer(config, sectors).fit(returns, **fit).weights_
    as_stated = config.model_copy(update={"solver": "skfolio"})
    skfolio = PortfolioOptimizer(as_stated, sectors, solver_params=TIGHT)
    reference = skfolio.fit(returns, **fit).weights_
    return fast, reference


def views_of(n: int) -> dict:
    views = np.where(np.arange(n) % 5 == 0, 0.001, np.nan)  # a view on every fifth asset
    return {"views": views, "confidence": 0.3}


def market_returns(n: int, seed: int, bars: int = 252) -> pd.DataFrame:
    """The synthetic market's daily returns (regimes, sectors, jumps), as bench/portfolio.py."""
    frame = SyntheticMarket(n_symbols=n, n_bars=bars + 1, seed=seed).generate()
    return frame.pivot(index="ts", columns="symbol", values="close").pct_change().iloc[1:]


def utility(returns: pd.DataFrame, weights: np.ndarray, beta: float = 0.95) -> float:
    """mean-cvar's objective, mean return - CVaR (risk aversion 1), evaluated exactly."""
    losses = -(returns.to_numpy() @ weights)
    cvar = min(a + np.maximum(losses - a, 0).mean() / (1 - beta) for a in losses)
    return float(returns.to_numpy().mean(axis=0) @ weights - cvar)


def interior_point(config, returns, sectors, direction) -> tuple[np.ndarray, bool]:
    """skfolio's clarabel solve of mean-cvar, and whether it reported its optimum inaccurate."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        as_stated = config.model_copy(update={"solver": "skfolio"})
        optimizer = PortfolioOptimizer(as_stated, sectors)
        weights = optimizer.fit(returns, direction).weights_
    return weights, any("inaccurate" in str(w.message) for w in caught)


VARIANTS = {
    "default": ({}, False),
    "sector caps": ({"sector_caps": {"tech": 0.3}, "max_weight": 0.1}, False),
    "long-short": ({"long_short": True, "max_weight": 0.1}, True),
}


@pytest.mark.parametrize("method", ["min-variance", "black-litterman"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("seed", SEEDS)
def test_quadratic_variance_gives_the_cone_solves_weights(method, variant, seed):
    options, signed = VARIANTS[variant]
    returns = factor_returns(120, seed)
    direction = np.random.default_rng(seed).choice([-1.0, 1.0], 120) if signed else None
    fit = {"direction": direction, **views_of(120)}
    fast, reference = both(PortfolioConfig(method=method, **options), returns, **fit)
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("method", ["min-variance", "black-litterman"])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_warm_start_from_held_weights_reaches_the_same_optimum(method, seed):
    """The screened solve starts from the assets held: any holdings give skfolio's weights."""
    returns = factor_returns(150, seed)
    held = np.zeros(150)
    held[np.random.default_rng(seed).choice(150, 40, replace=False)] = 0.98 / 40
    config = PortfolioConfig(method=method, sector_caps={"tech": 0.3}, max_weight=0.1)
    fast, reference = both(config, returns, previous=held, **views_of(150))
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("method", ["min-variance", "black-litterman"])
def test_a_wide_optimum_is_solved_whole(method):
    """A cap of 0.012 spreads the budget over 82+ of 120 assets: the screen gives way to one
    solve of the whole program, with the same weights."""
    config = PortfolioConfig(method=method, max_weight=0.012)
    fast, reference = both(config, factor_returns(120, 4), **views_of(120))
    assert (fast > 1e-6).sum() > 60
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("method", ["min-variance", "black-litterman", "risk-parity", "hrp"])
def test_five_hundred_assets_give_the_same_weights(method):
    returns = factor_returns(500, seed=7)
    fast, reference = both(PortfolioConfig(method=method), returns, **views_of(500))
    assert np.abs(fast - reference).sum() < L1


def test_five_hundred_assets_give_mean_cvars_weights():
    returns = market_returns(500, seed=7)
    config = PortfolioConfig(method="mean-cvar")
    reference, inaccurate = interior_point(config, returns, {}, None)
    fast = PortfolioOptimizer(config).fit(returns).weights_
    assert not inaccurate
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize(
    "options",
    [{}, {"sector_caps": {"tech": 0.3}}, {"max_weight": 0.012}, {"covariance": "empirical"}],
    ids=["uncapped", "sector cap binds", "weight cap binds", "empirical covariance"],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_risk_parity_gives_risk_budgetings_weights(options, seed):
    """Newton's weights where no cap binds, the constrained solve where one does."""
    fast, reference = both(
        PortfolioConfig(method="risk-parity", **options), factor_returns(120, seed)
    )
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("options", [{}, {"sector_caps": {"tech": 0.3}, "max_weight": 0.02}])
@pytest.mark.parametrize("seed", SEEDS)
def test_hierarchical_risk_parity_gives_skfolios_weights(options, seed):
    config = PortfolioConfig(method="hrp", **options)
    fast, reference = both(config, factor_returns(120, seed))
    assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("seed", SEEDS)
def test_newtons_risk_parity_is_risk_budgetings_optimum(seed):
    returns = factor_returns(150, seed)
    covariance = np.cov(returns.to_numpy(), rowvar=False)
    weights = risk_parity(covariance)
    solved = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE).fit(returns).weights_
    assert weights is not None
    assert np.abs(weights - solved).sum() < L1
    contributions = weights * (covariance @ weights)
    assert np.ptp(contributions) / contributions.mean() < 1e-8


@pytest.mark.parametrize("data", [market_returns, factor_returns], ids=["market", "factor"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_cvar_gives_the_interior_points_optimum(data, variant, seed):
    """The simplex's weights are clarabel's within 1e-4 where clarabel reached mean-cvar's
    optimum; where it stopped short (skfolio warns "Solution may be inaccurate", on most of
    these returns) the simplex's objective is at least as high."""
    options, signed = VARIANTS[variant]
    returns = data(120, seed)
    sectors = sectors_of(returns.columns)
    direction = np.random.default_rng(seed).choice([-1.0, 1.0], 120) if signed else None
    config = PortfolioConfig(method="mean-cvar", **options)
    reference, inaccurate = interior_point(config, returns, sectors, direction)
    fast = PortfolioOptimizer(config, sectors).fit(returns, direction).weights_
    if inaccurate:
        assert utility(returns, fast) >= utility(returns, reference) - 1e-12
    else:
        assert np.abs(fast - reference).sum() < L1


@pytest.mark.parametrize("holes", [False, True], ids=["complete", "with gaps"])
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_pairwise_correlation_is_pandas_pairwise_one(holes, seed):
    """The rebalance's correlation check: numpy's one matrix where every bar is there, pandas'
    pairwise-complete correlations where some are missing - the same mean either way."""
    returns = factor_returns(60, seed, bars=120)
    returns["S000"] = 0.0  # a constant column has no correlation: left out of the mean
    if holes:
        returns.iloc[::7, 3] = np.nan
    corr = returns.corr().to_numpy()
    expected = np.nanmean(corr[np.triu_indices_from(corr, k=1)])
    assert mean_pairwise_correlation(returns) == pytest.approx(expected, abs=1e-12)
