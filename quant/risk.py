"""Value at Risk and Expected Shortfall of a return series, by four methods, as positive loss
fractions. The same estimators serve a portfolio's return series (``trading_runtime.portfolio``).

- ``historical``: the empirical quantile of the observed returns, with empyrical's definitions
  (VaR: ``numpy.percentile``, linear interpolation; ES: the mean of the ``int((n-1)(1-level))+1``
  worst returns). Horizon h: overlapping h-bar compounded returns.
- ``parametric``: a normal fitted by mean and standard deviation, optionally Cornish-Fisher
  adjusted for skew and kurtosis (ES then integrates the adjusted quantile over the tail).
  Horizon h: square-root of time (mean x h, volatility x sqrt h; skew / sqrt h, kurtosis / h).
- ``monte-carlo``: seeded simulation of h-step paths, compounded, then the empirical quantile:
  a normal, a Student-t (``scipy.stats.t.fit``) or an i.i.d. bootstrap of the bars.
- ``evt``: peaks over threshold - a generalized Pareto (``scipy.stats.genpareto``) fitted to
  the losses beyond a threshold quantile, with the McNeil-Frey tail formulas. Horizon h:
  square-root of time on the 1-bar numbers. Caveat: that is exact only for i.i.d. normal
  returns; heavy tails scale more like h^xi, so a 10-day EVT figure is an approximation.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import integrate, stats

Method = Literal["historical", "parametric", "monte-carlo", "evt"]


class RiskEstimate(NamedTuple):
    """VaR and ES as positive losses (unpacks as ``var, es``)."""

    var: float
    es: float


def value_at_risk(
    returns, level: float = 0.95, horizon: int = 1, method: Method = "historical", **options
) -> float:
    """The loss not exceeded with probability ``level`` over ``horizon`` bars."""
    return risk_measures(returns, level, horizon, method, **options).var


def expected_shortfall(
    returns, level: float = 0.95, horizon: int = 1, method: Method = "historical", **options
) -> float:
    """The mean loss beyond the VaR at ``level`` over ``horizon`` bars."""
    return risk_measures(returns, level, horizon, method, **options).es


def risk_measures(
    returns, level: float = 0.95, horizon: int = 1, method: Method = "historical", **options
) -> RiskEstimate:
    """VaR and ES of a 1-D series of simple returns in one pass. ``options`` by method:
    parametric ``cornish_fisher``; monte-carlo ``distribution`` ("normal", "t", "bootstrap"),
    ``paths``, ``seed``; evt ``threshold`` (quantile of the losses), ``min_exceedances``."""
    r = _series(returns)
    check_request(level, horizon, method)
    estimator = _ESTIMATORS[method]
    _check_options(estimator, method, options)
    return estimator(r, level, horizon, **options)


# --- the methods, for one series ------------------------------------------------------------


def _historical(r: np.ndarray, level: float, horizon: int) -> RiskEstimate:
    return empirical_var_es(compound(r, horizon), level)


def _parametric(
    r: np.ndarray, level: float, horizon: int, *, cornish_fisher: bool = False
) -> RiskEstimate:
    mean, sd = r.mean() * horizon, r.std(ddof=1) * math.sqrt(horizon)
    if not cornish_fisher:
        return normal_var_es(mean, sd, level)
    skew = stats.skew(r) / math.sqrt(horizon)
    kurt = stats.kurtosis(r) / horizon  # excess kurtosis of an h-bar sum of i.i.d. bars

    def quantile(p: float) -> float:
        z = stats.norm.ppf(p)
        return (
            z
            + (z**2 - 1) * skew / 6
            + (z**3 - 3 * z) * kurt / 24
            - (2 * z**3 - 5 * z) * skew**2 / 36
        )

    tail = 1 - level
    mean_tail = integrate.quad(quantile, 0, tail)[0] / tail
    return RiskEstimate(float(-(mean + sd * quantile(tail))), float(-(mean + sd * mean_tail)))


def _monte_carlo(
    r: np.ndarray,
    level: float,
    horizon: int,
    *,
    distribution: Literal["normal", "t", "bootstrap"] = "normal",
    paths: int = 10_000,
    seed: int = 0,
) -> RiskEstimate:
    rng = np.random.default_rng(seed)
    shape = (horizon, paths)  # step by step, as the portfolio simulation draws them
    if distribution == "normal":
        draws = rng.normal(r.mean(), r.std(ddof=1), shape)
    elif distribution == "t":
        nu, loc, scale = stats.t.fit(r)
        draws = stats.t.rvs(nu, loc, scale, size=shape, random_state=rng)
    elif distribution == "bootstrap":
        draws = rng.choice(r, size=shape)
    else:
        raise ValueError(f"distribution must be normal, t or bootstrap, got {distribution!r}")
    return empirical_var_es(np.prod(1 + draws, axis=0) - 1, level)


def _evt(
    r: np.ndarray,
    level: float,
    horizon: int,
    *,
    threshold: float = 0.90,
    min_exceedances: int = 20,
) -> RiskEstimate:
    """McNeil-Frey: VaR = u + beta/xi ((n/Nu (1-q))^-xi - 1); ES = (VaR + beta - xi u)/(1-xi)."""
    if not 0 < threshold < level:
        raise ValueError(f"the EVT threshold {threshold} must lie in (0, level={level})")
    losses = -r
    u = float(np.quantile(losses, threshold))
    excess = losses[losses > u] - u
    n, nu = len(losses), len(excess)
    if nu < min_exceedances:
        raise ValueError(
            f"EVT needs at least {min_exceedances} losses beyond the {threshold:.0%} quantile,"
            f" got {nu} from {n} observations: use a longer history or a lower threshold"
        )
    xi, _, beta = stats.genpareto.fit(excess, floc=0)
    if xi >= 1:
        raise ValueError(f"tail shape xi = {xi:.2f} >= 1: the expected shortfall is infinite")
    ratio = n / nu * (1 - level)
    exponential = abs(xi) < 1e-9  # the xi -> 0 limit
    var = u - beta * math.log(ratio) if exponential else u + beta / xi * (ratio**-xi - 1)
    es = (var + beta - xi * u) / (1 - xi)
    scale = math.sqrt(horizon)
    return RiskEstimate(float(var * scale), float(es * scale))


_ESTIMATORS: dict[str, Callable[..., RiskEstimate]] = {
    "historical": _historical,
    "parametric": _parametric,
    "monte-carlo": _monte_carlo,
    "evt": _evt,
}


# --- shared pieces --------------------------------------------------------------------------


def normal_var_es(mean: float, sd: float, level: float) -> RiskEstimate:
    z = stats.norm.ppf(level)
    return RiskEstimate(float(sd * z - mean), float(sd * stats.norm.pdf(z) / (1 - level) - mean))


def empirical_var_es(x: np.ndarray, level: float) -> RiskEstimate:
    """empyrical's value_at_risk and conditional_value_at_risk at cutoff 1 - level, negated."""
    position = (len(x) - 1) * (1 - level)  # numpy.percentile's linear interpolation
    k = int(position)
    ordered = np.partition(x, (k, k + 1))  # one partial sort serves both
    low, high = ordered[k], ordered[k + 1]
    var = low + (high - low) * (position - k)
    return RiskEstimate(float(-var), float(-ordered[: k + 1].mean()))


def compound(r: np.ndarray, horizon: int) -> np.ndarray:
    """Overlapping ``horizon``-bar compounded returns along the first axis."""
    if horizon == 1:
        return r
    if len(r) < horizon + 1:
        raise ValueError(f"{len(r)} bars give fewer than 2 windows of {horizon} bars")
    return np.prod(1 + sliding_window_view(r, horizon, axis=0), axis=-1) - 1


def check_request(level: float, horizon: int, method: str) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of bars >= 1, got {horizon}")
    if method not in _ESTIMATORS:
        raise ValueError(f"method must be one of {', '.join(_ESTIMATORS)}, got {method!r}")


def _check_options(estimator: Callable, method: str, options: dict) -> None:
    params = inspect.signature(estimator).parameters
    known = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"method {method!r} has no option {', '.join(unknown)}"
            f" (options: {', '.join(known) or 'none'})"
        )


def finite(a: np.ndarray, what: str) -> np.ndarray:
    bad = int(np.sum(~np.isfinite(a)))
    if bad:
        raise ValueError(f"{what} contain {bad} NaN or infinite values: drop or fill them first")
    return a


def _series(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {r.shape}: use portfolio_var_es")
    if len(r) < 2:
        raise ValueError(f"need at least 2 returns, got {len(r)}")
    return finite(r, "returns")
