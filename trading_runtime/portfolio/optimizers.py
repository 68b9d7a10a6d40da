"""Target weights from recent returns: skfolio's estimators, configured from a PortfolioConfig.

The strategy's signal picks the symbols and their direction (a symbol with no signal gets no
weight); the optimizer sizes them. Every method solves under the same constraints - long-only
or long/short, a cap per symbol, caps per sector, and a budget - and a turnover budget limits
how far one rebalance moves from the weights held: the new weights are the held ones moved
towards the optimum by at most ``turnover`` of gross weight. Both ends satisfy the (convex)
constraints, so the blend does too. Hierarchical risk parity takes no linear constraints, so
there a sector over its cap is scaled down to it and the rest stays in cash.

The methods solve skfolio's problems in faster forms with the same optimum (``solvers.py``:
the variance as a quadratic objective, risk parity by Newton's method where no cap binds,
mean-CVaR's linear program by HiGHS' simplex, HRP's cluster variances directly);
``solver="skfolio"`` solves them as skfolio states them, the baseline the fast forms are
benchmarked against. ``solver_params`` (clarabel's settings) defaults to skfolio's there and
to ``solvers.TIGHT`` otherwise: skfolio's stopping tolerances leave a
min-variance solve up to ~1e-3 of gross weight from its optimum.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from threadpoolctl import threadpool_limits

Method = Literal["equal", "min-variance", "risk-parity", "hrp", "mean-cvar", "black-litterman"]
Covariance = Literal["empirical", "ledoit-wolf", "denoise"]
Solver = Literal["fast", "skfolio"]
LONG_ONLY_METHODS = ("risk-parity", "hrp")
SCREENED = ("min-variance", "black-litterman")  # long-only: solved over a subset at a time


class PortfolioConfig(BaseModel):
    """How a strategy turns its signals into target weights."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "min-variance"
    covariance: Covariance = Field("ledoit-wolf", description="covariance estimator")
    lookback: int = Field(252, ge=20, description="bars of returns the estimate uses")
    rebalance_every: int = Field(21, ge=1, description="bars between rebalances")
    long_short: bool = Field(False, description="allow short weights where the signal is < 0")
    max_weight: float = Field(0.35, gt=0, le=1, description="cap per symbol (absolute)")
    budget: float = Field(0.98, gt=0, le=1, description="net weight invested")
    sector_caps: dict[str, float] = Field(
        default_factory=dict, description="max gross weight per sector"
    )
    turnover: float | None = Field(
        None, gt=0, description="max sum of |weight changes| per rebalance; None: no budget"
    )
    cvar_beta: float = Field(0.95, gt=0.5, lt=1, description="mean-cvar: CVaR confidence")
    risk_aversion: float = Field(1.0, gt=0, description="mean-cvar / black-litterman utility")
    tau: float = Field(0.05, gt=0, description="black-litterman: uncertainty of the prior")
    solver: Solver = Field(
        "fast",
        description="fast: the faster forms of the same problems; skfolio: as skfolio states "
        "them (the reference the fast forms are measured against)",
    )
    correlation_recent: int = Field(
        21, ge=2, description="bars of the recent correlation each rebalance checks"
    )
    correlation_threshold: float = Field(
        0.2, gt=0, description="move of the mean pairwise correlation that raises an alert"
    )

    @model_validator(mode="after")
    def _check(self) -> PortfolioConfig:
        if self.long_short and self.method in LONG_ONLY_METHODS:
            raise ValueError(f"{self.method} is long-only: drop long_short or pick another method")
        bad = {k: v for k, v in self.sector_caps.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"sector caps must be in (0, 1]: {bad}")
        return self


class PortfolioOptimizer:
    """``fit(returns, ...)`` then ``weights_``: one rebalance's target weights (estimator style:
    configuration in the constructor, results as fitted attributes)."""

    def __init__(
        self,
        config: PortfolioConfig,
        sectors: dict[str, str | None] | None = None,
        solver_params: dict | None = None,
    ):
        self.config = config
        self.sectors = sectors or {}
        self.reference = config.solver == "skfolio"
        self.solver_params = solver_params

    def fit(
        self,
        returns: pd.DataFrame,
        direction: np.ndarray | None = None,
        views: np.ndarray | None = None,
        confidence: float = 0.5,
        previous: np.ndarray | None = None,
    ) -> PortfolioOptimizer:
        """``returns``: bars x symbols. ``direction``: +1 / -1 / 0 per symbol (the signal's sign;
        default all long). ``views``: per-bar expected returns (black-litterman; NaN: no view),
        believed with ``confidence`` in (0, 1). ``previous``: the weights held now."""
        n = returns.shape[1]
        direction = np.ones(n) if direction is None else np.sign(np.nan_to_num(direction))
        if not self.config.long_short:
            direction = np.maximum(direction, 0.0)
        previous = np.zeros(n) if previous is None else np.nan_to_num(previous)
        weights = np.zeros(n)
        chosen = np.flatnonzero(direction != 0)
        if len(chosen) == 1:
            weights[chosen] = direction[chosen] * min(self.config.max_weight, self.config.budget)
        elif len(chosen) > 1:
            sub = returns.iloc[:, chosen]
            sub_views = None if views is None else views[chosen]
            # one BLAS thread: a 500-asset solve is many small dense operations, too small for
            # threads to pay; with the cores busy (the engine, other processes) OpenBLAS'
            # spinning threads made it up to 14x slower (risk parity 0.08 s -> 1.1 s, measured).
            # The reference path keeps the threads, as it ran before
            threads = nullcontext() if self.reference else threadpool_limits(1, user_api="blas")
            with threads:
                held = previous[chosen]
                weights[chosen] = self._solve(sub, direction[chosen], sub_views, confidence, held)
        weights = self._cap_sectors(list(returns.columns), weights)
        self.optimal_ = weights
        self.weights_ = self._within_turnover(weights, previous)
        self.turnover_ = float(np.abs(self.weights_ - previous).sum())
        return self

    # --- the solve --------------------------------------------------------------------------

    def _solve(self, returns, direction, views, confidence, held) -> np.ndarray:
        c = self.config
        if c.method == "equal":
            k = len(direction)
            return direction * min(c.budget / k, c.max_weight)
        weights = None
        if c.method == "risk-parity" and not self.reference:
            weights = self._risk_parity(returns)
        if c.method in SCREENED and not (self.reference or c.long_short):
            weights = self._screened(returns, views, confidence, held)
        if weights is None:
            estimator = self._estimator(returns, direction, views, confidence)
            # only Black-Litterman's views name assets; a plain array spares scikit-learn's
            # per-column dtype checks of a 500-column frame in every sub-estimator (~0.1 s)
            named = self.reference or c.method == "black-litterman"
            estimator.fit(returns if named else returns.to_numpy())
            weights = np.asarray(estimator.weights_, dtype=float)
        if c.method in LONG_ONLY_METHODS:  # fully invested by construction: scale to budget
            weights *= c.budget
        return weights

    def _screened(self, returns, views, confidence, held) -> np.ndarray | None:
        """Long-only min-variance or Black-Litterman's utility over a subset of the assets at a
        time, starting from those held (``solvers.ScreenedVariance``); None: solve the whole."""
        from skfolio.prior import EmpiricalPrior  # deferred: skfolio, see _estimator

        from trading_runtime.portfolio.solvers import ScreenedVariance  # deferred: as above

        c = self.config
        if c.method == "black-litterman":
            prior = self._black_litterman(list(returns.columns), views, confidence).fit(returns)
            mu, aversion = prior.return_distribution_.mu, c.risk_aversion
        else:
            prior = EmpiricalPrior(covariance_estimator=self._covariance())
            prior.fit(returns.to_numpy())
            mu, aversion = np.zeros(returns.shape[1]), 1.0
        sectors = self._sector_of(list(returns.columns))
        groups = [(sectors == s, cap) for s, cap in c.sector_caps.items() if (sectors == s).any()]
        covariance = prior.return_distribution_.covariance
        problem = ScreenedVariance(covariance, mu, aversion, c.max_weight, c.budget, groups)
        return problem.solve(np.flatnonzero(held > 0))

    def _risk_parity(self, returns: pd.DataFrame) -> np.ndarray | None:
        """Newton's equal-risk-contribution weights when no weight or sector cap binds (then
        they are RiskBudgeting's optimum), else None: the caps need the constrained solve."""
        from skfolio.prior import EmpiricalPrior  # deferred: skfolio, see _estimator

        from trading_runtime.portfolio.solvers import risk_parity  # deferred: imports skfolio

        prior = EmpiricalPrior(covariance_estimator=self._covariance()).fit(returns)
        weights = risk_parity(prior.return_distribution_.covariance)
        if weights is None or weights.max() > self.config.max_weight:
            return None
        sectors = self._sector_of(list(returns.columns))
        for sector, cap in self.config.sector_caps.items():
            if weights[sectors == sector].sum() > cap:
                return None
        return weights

    def _estimator(self, returns, direction, views, confidence):
        # deferred: skfolio (~0.7 s measured on top of the engine's own imports) loads only when
        # a portfolio is optimized, not with every trading_runtime.engine import
        from skfolio import RiskMeasure
        from skfolio.cluster import HierarchicalClustering  # deferred: as above
        from skfolio.optimization import (  # deferred: as above
            HierarchicalRiskParity,
            MeanRisk,
            ObjectiveFunction,
            RiskBudgeting,
        )
        from skfolio.prior import EmpiricalPrior  # deferred: as above

        from trading_runtime.portfolio.solvers import (  # deferred: imports skfolio, as above
            LINEAR_PROGRAM,
            DirectHierarchicalRiskParity,
            QuadraticMeanRisk,
        )

        c = self.config
        low = np.where(direction < 0, -c.max_weight, 0.0)
        high = np.where(direction > 0, c.max_weight, 0.0)
        bounds = {"min_weights": low, "max_weights": high}
        linear = self._sector_constraints(list(returns.columns))
        prior = EmpiricalPrior(covariance_estimator=self._covariance())
        settings = {} if self._solver_params() is None else {"solver_params": self._solver_params()}
        if c.method == "hrp":
            if self.reference:
                return HierarchicalRiskParity(prior_estimator=prior, **bounds)
            # HRP reads only the linkage: skip the cluster count (for plots) with max_clusters
            clustering = HierarchicalClustering(max_clusters=1)
            return DirectHierarchicalRiskParity(
                prior_estimator=prior, hierarchical_clustering_estimator=clustering, **bounds
            )
        budget = {"budget": c.budget} | ({"max_short": c.budget} if c.long_short else {})
        if c.method == "risk-parity":
            return RiskBudgeting(
                risk_measure=RiskMeasure.VARIANCE,
                prior_estimator=prior,
                **bounds,
                **linear,
                **settings,
            )
        common = {**bounds, **budget, **linear, **settings}
        variance = MeanRisk if self.reference else QuadraticMeanRisk
        if c.method == "min-variance":
            return variance(
                ObjectiveFunction.MINIMIZE_RISK,
                risk_measure=RiskMeasure.VARIANCE,
                prior_estimator=prior,
                **common,
            )
        if c.method == "mean-cvar":
            return MeanRisk(
                ObjectiveFunction.MAXIMIZE_UTILITY,
                risk_measure=RiskMeasure.CVAR,
                risk_aversion=c.risk_aversion,
                cvar_beta=c.cvar_beta,
                prior_estimator=prior,
                **common | ({} if self.reference else LINEAR_PROGRAM),
            )
        return variance(
            ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_measure=RiskMeasure.VARIANCE,
            risk_aversion=c.risk_aversion,
            prior_estimator=self._black_litterman(list(returns.columns), views, confidence),
            **common,
        )

    def _solver_params(self) -> dict | None:
        """clarabel's settings for skfolio's convex solves; None: skfolio's own."""
        from trading_runtime.portfolio.solvers import TIGHT  # deferred: imports skfolio

        if self.solver_params is not None or self.reference:
            return self.solver_params
        return TIGHT

    def _covariance(self):
        # deferred: skfolio, see _estimator
        from skfolio.moments import DenoiseCovariance, EmpiricalCovariance, LedoitWolf

        return {
            "empirical": EmpiricalCovariance,
            # shrunk towards the identity, Ledoit-Wolf is positive definite already: skip the
            # nearest-PD projection (an eigendecomposition, most of a 500-asset estimate)
            "ledoit-wolf": lambda: LedoitWolf(nearest=False),
            "denoise": DenoiseCovariance,
        }[self.config.covariance]()

    def _black_litterman(self, assets: list[str], views, confidence: float):
        """The market-implied (equilibrium) returns as the prior, the model's forecasts as
        absolute views; with no view at all it is the prior alone."""
        from skfolio.moments import EquilibriumMu  # deferred: skfolio, see _estimator
        from skfolio.prior import BlackLitterman, EmpiricalPrior  # deferred: as above

        c = self.config
        equilibrium = EmpiricalPrior(
            mu_estimator=EquilibriumMu(risk_aversion=c.risk_aversion),
            covariance_estimator=self._covariance(),
        )
        stated = [] if views is None else [(a, v) for a, v in zip(assets, views, strict=True)]
        stated = [(a, float(v)) for a, v in stated if np.isfinite(v)]
        if not stated:
            return equilibrium
        return BlackLitterman(
            views=[f"{a} == {v:.10f}" for a, v in stated],
            prior_estimator=equilibrium,
            tau=c.tau,
            view_confidences=[float(np.clip(confidence, 0.01, 0.99))] * len(stated),
        )

    # --- constraints ------------------------------------------------------------------------

    def _sector_constraints(self, assets: list[str]) -> dict:
        caps = self.config.sector_caps
        if not caps:
            return {}
        groups = [self._sector_of(assets).tolist()]
        present = set(groups[0])
        rules = [f"{s} <= {cap}" for s, cap in caps.items() if s in present]
        if self.config.long_short or not rules:  # gross caps on signed weights: applied after
            return {}
        return {"groups": groups, "linear_constraints": rules}

    def _sector_of(self, assets: list[str]) -> np.ndarray:
        return np.array([self.sectors.get(a) or "unknown" for a in assets])

    def _cap_sectors(self, assets: list[str], weights: np.ndarray) -> np.ndarray:
        """Scale a sector over its gross cap down to it (the rest stays in cash)."""
        out = weights.copy()
        sectors = self._sector_of(assets)
        for sector, cap in self.config.sector_caps.items():
            mask = sectors == sector
            gross = np.abs(out[mask]).sum()
            if gross > cap:
                out[mask] *= cap / gross
        return out

    def _within_turnover(self, target: np.ndarray, previous: np.ndarray) -> np.ndarray:
        budget = self.config.turnover
        change = np.abs(target - previous).sum()
        if budget is None or change <= budget:
            return target
        return previous + (target - previous) * (budget / change)
