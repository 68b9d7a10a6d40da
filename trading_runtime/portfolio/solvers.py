"""The optimizers' problems in forms that solve faster to the same optimum.

Profiled at 500 assets (bench/portfolio.py), nearly all of a convex solve was clarabel's
interior point, not cvxpy's canonicalization (~5%) or the covariance (~5%):

- skfolio writes a variance as the square of a second-order cone over the covariance's
  Cholesky factor; clarabel takes a quadratic objective directly and needs about half the
  iterations on it (min-variance: 28 cone iterations, 0.72 s, against 14, 0.14 s). The optimum
  is the same convex problem's, so the tolerances are set tight enough that it agrees with the
  cone solve to well under 1e-4 of gross weight. Long-only, the optimum holds ~15-40 of 500
  assets, so ``ScreenedVariance`` solves that program over a subset at a time (warm-started
  from the assets held) until no asset left out would improve it: 0.37 s -> 0.07 s.
- Risk budgeting with equal budgets (risk parity) takes a log-barrier over exponential cones;
  where no weight or sector cap binds, its optimum is the equal-risk-contribution portfolio,
  found by Newton's method on its smooth convex form (Spinu 2013) in a few 500 x 500 solves.
- Hierarchical risk parity priced each cluster's variance through a skfolio Portfolio object
  (1,498 of them at 500 assets, 0.39 s); the same ``w'Cw`` over the cluster's assets is ~1 ms.
- Mean-CVaR is a linear program: clarabel spent ~21 interior-point iterations of ~40 ms on
  its dense 252-scenario x 500-asset block, HiGHS' simplex (scipy's, through cvxpy) solves it
  in a fifth of the time to a vertex, the exact optimum. On returns where clarabel stops short
  (skfolio then warns "Solution may be inaccurate") HiGHS' objective is the better one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from skfolio import RiskMeasure
from skfolio.optimization import HierarchicalRiskParity, MeanRisk

# clarabel's defaults stop at a relative gap of 1e-8, a few 1e-4 of gross weight away from the
# optimum on a flat 500-asset min-variance problem; these reach it (measured: < 1e-6)
TIGHT = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-12,
    "tol_feas": 1e-12,
    "tol_ktratio": 1e-10,
    "max_iter": 500,
}
LINEAR_PROGRAM = {"solver": "SCIPY", "solver_params": {"scipy_options": {"method": "highs"}}}
RISK_PARITY_TOL = 1e-10  # largest relative error of a risk contribution at the optimum
NEWTON_STEPS = 100
# above this Newton decrement a step is damped (backtracking); below it, in the region where
# Newton converges quadratically, full steps are taken: the objective's change is rounding there
DAMPED_DECREMENT = 1e-6
FIRST_SUBSET = 60  # assets the first subset of a screened solve takes (besides those held)
ADDED_PER_ROUND = 30  # most negative reduced costs joining the subset per round, at least
MAX_ROUNDS = 20
REDUCED_COST_TOL = 1e-9  # relative to the gradient's scale: above solver noise, far below a gap


class QuadraticMeanRisk(MeanRisk):
    """skfolio's MeanRisk with the variance handed to the solver as a quadratic form."""

    def _variance_risk(self, return_distribution, w):
        covariance = cp.psd_wrap(return_distribution.covariance)
        return cp.quad_form(w, covariance), []


class DirectHierarchicalRiskParity(HierarchicalRiskParity):
    """skfolio's HRP with a cluster's variance computed over its assets' covariance block."""

    def _risk(self, weights, return_distribution):
        if self.risk_measure != RiskMeasure.VARIANCE:
            return super()._risk(weights, return_distribution)
        held = np.flatnonzero(weights)
        block = return_distribution.covariance[np.ix_(held, held)]
        return float(weights[held] @ block @ weights[held])


def risk_parity(covariance: np.ndarray) -> np.ndarray | None:
    """Equal-risk-contribution weights summing to 1, or None if Newton's method did not get
    every contribution within ``RISK_PARITY_TOL`` of the others.

    Minimizes ``y'Cy / 2 - sum(log y)`` (strictly convex for y > 0): its stationary point has
    ``y_i (Cy)_i = 1`` for every i, so ``y / sum(y)`` is the risk-parity portfolio - the
    optimum of skfolio's RiskBudgeting with equal budgets when no cap binds."""
    y = 1.0 / np.sqrt(np.diag(covariance))
    y *= np.sqrt(len(y) / (y @ covariance @ y))
    for _ in range(NEWTON_STEPS):
        if np.abs(y * (covariance @ y) - 1.0).max() < RISK_PARITY_TOL:
            return y / y.sum()
        gradient = covariance @ y - 1.0 / y
        step = np.linalg.solve(covariance + np.diag(1.0 / y**2), gradient)
        size = _step_size(covariance, y, step, gradient @ step)
        if size is None:
            return None
        y = y - size * step
    return None


def _step_size(covariance: np.ndarray, y: np.ndarray, step: np.ndarray, decrement: float):
    """Newton's step length: halved until y stays positive and, far from the optimum, until
    the objective drops by a quarter of what the step promised (Armijo); None if it cannot."""

    def objective(x: np.ndarray) -> float:
        return 0.5 * x @ covariance @ x - np.log(x).sum()

    size = 1.0
    while np.any(y - size * step <= 0):
        size *= 0.5
    if decrement <= DAMPED_DECREMENT:
        return size
    now = objective(y)
    while objective(y - size * step) > now - 0.25 * size * decrement:
        size *= 0.5
        if size < 1e-12:
            return None
    return size


@dataclass(frozen=True)
class ScreenedVariance:
    """Long-only ``min risk_aversion * w'Cw - mu'w`` (min-variance: mu = 0) under the budget,
    a cap per asset and caps per sector (``groups``: member mask, cap), solved over a subset of
    the assets at a time. A 500-asset optimum holds ~15-40 assets: the subset's program is
    small, and its duals price every asset left out - one whose reduced cost is negative would
    improve the optimum, so it joins and the subset is solved again. When none would, the
    subset's optimum is the whole program's (its optimality conditions hold for every asset).
    The first subset is the previous rebalance's holdings (the warm start) and the assets the
    objective's gradient at equal weights favours."""

    covariance: np.ndarray
    mu: np.ndarray
    risk_aversion: float
    cap: float
    budget: float
    groups: list[tuple[np.ndarray, float]] = field(default_factory=list)

    def solve(self, held: np.ndarray) -> np.ndarray | None:
        """The whole program's optimum; None when a subset's program did not solve to
        optimality (e.g. too few assets for the budget under the sector caps)."""
        n = len(self.mu)
        even = np.full(n, self.budget / n)
        gradient = 2 * self.risk_aversion * (self.covariance @ even) - self.mu
        subset = np.union1d(np.argsort(gradient)[:FIRST_SUBSET], held)
        tolerance = REDUCED_COST_TOL * np.abs(gradient).max()
        for _ in range(MAX_ROUNDS):
            solved = self._subset(subset)
            if solved is None:
                return None
            weights, gamma, etas = solved
            reduced = 2 * self.risk_aversion * (self.covariance[:, subset] @ weights)
            reduced += gamma - self.mu
            for (members, _), eta in zip(self.groups, etas, strict=True):
                reduced += eta * members
            reduced[subset] = 0.0
            entering = np.flatnonzero(reduced < -tolerance)
            if len(entering) == 0:
                out = np.zeros(n)
                out[subset] = weights
                return out
            joining = max(ADDED_PER_ROUND, len(subset) // 2)  # grows with a wide optimum
            subset = np.union1d(subset, entering[np.argsort(reduced[entering])][:joining])
            if len(subset) > n // 2:  # a wide optimum: one solve of the whole is cheaper
                subset = np.arange(n)
        return None

    def _subset(self, subset: np.ndarray):
        """The program over ``subset``: its weights and the duals of the budget and of the
        sector caps, or None when it did not solve to optimality."""
        w = cp.Variable(len(subset))
        block = cp.psd_wrap(self.covariance[np.ix_(subset, subset)])
        objective = self.risk_aversion * cp.quad_form(w, block) - self.mu[subset] @ w
        total = cp.sum(w) == self.budget
        sectors = [cp.sum(w[members[subset]]) <= cap for members, cap in self.groups]
        problem = cp.Problem(cp.Minimize(objective), [total, *sectors, w >= 0, w <= self.cap])
        problem.solve(solver="CLARABEL", **TIGHT)
        if problem.status != cp.OPTIMAL:
            return None
        return w.value, float(total.dual_value), [float(s.dual_value) for s in sectors]
