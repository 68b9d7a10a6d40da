"""Value at Risk and Expected Shortfall of a return series or a portfolio, by four methods, as
positive loss fractions (or currency, for a portfolio given in notionals).

- ``historical``: the empirical quantile of the observed returns, with empyrical's definitions
  (VaR: ``numpy.percentile``, linear interpolation; ES: the mean of the ``int((n-1)(1-level))+1``
  worst returns). Horizon h: overlapping h-bar compounded returns.
- ``parametric``: a normal fitted by mean and standard deviation, optionally Cornish-Fisher
  adjusted for skew and kurtosis (ES then integrates the adjusted quantile over the tail).
  Horizon h: square-root of time (mean x h, volatility x sqrt h; skew / sqrt h, kurtosis / h).
- ``monte-carlo``: seeded simulation of h-step paths, compounded, then the empirical quantile.
  One series: a normal, a Student-t (``scipy.stats.t.fit``) or an i.i.d. bootstrap of the bars.
  A portfolio: multivariate normal or t with a Ledoit-Wolf shrunk covariance (Cholesky).
- ``evt``: peaks over threshold - a generalized Pareto (``scipy.stats.genpareto``) fitted to
  the losses beyond a threshold quantile, with the McNeil-Frey tail formulas. Horizon h:
  square-root of time on the 1-bar numbers. Caveat: that is exact only for i.i.d. normal
  returns; heavy tails scale more like h^xi, so a 10-day EVT figure is an approximation.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy import integrate, stats
from sklearn.covariance import LedoitWolf

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
    _check(level, horizon, method)
    estimator = _ESTIMATORS[method]
    _check_options(estimator, method, options)
    return estimator(r, level, horizon, **options)


def portfolio_var_es(
    returns_matrix,
    weights_or_notional,
    level: float = 0.95,
    horizon: int = 1,
    method: Method = "historical",
    paths: int = 10_000,
    seed: int = 0,
    *,
    distribution: Literal["normal", "t"] = "normal",
    df: float | None = None,
    **options,
) -> RiskEstimate:
    """VaR and ES of a portfolio of assets whose per-bar simple returns are the columns of
    ``returns_matrix`` (bars x assets, oldest first), held in ``weights_or_notional`` (per
    asset; a Series is aligned to a DataFrame's columns). The result is in the units of the
    holdings: a fraction for weights, currency for notionals. Holdings are fixed over the
    horizon (no rebalancing). Monte Carlo: multivariate normal, or t with ``df`` degrees of
    freedom (None: fitted to the portfolio's historical returns); other methods run on the
    portfolio's historical return series (``options`` go to them)."""
    frame, w = _matrix(returns_matrix), _holdings(returns_matrix, weights_or_notional)
    _check(level, horizon, method)
    if method == "monte-carlo":
        if paths < 2:
            raise ValueError(f"paths must be at least 2, got {paths}")
        return _portfolio_monte_carlo(frame, w, level, horizon, paths, seed, distribution, df)
    if method == "historical":
        return _empirical(_compound(frame, horizon) @ w, level)
    if method == "parametric" and not options.get("cornish_fisher"):
        mean = frame.mean(axis=0) @ w * horizon
        sd = math.sqrt(max(w @ _covariance(frame) @ w, 0.0) * horizon)
        return _normal(mean, sd, level)
    return risk_measures(frame @ w, level, horizon, method, **options)


def scenario_risk(pnl: np.ndarray, level: float) -> RiskEstimate:
    """Historical VaR and ES of scenario P&L (no validation: for the pre-trade hot path)."""
    return _empirical(pnl, level)


class ScenarioPnL:
    """What one account's exposure would have made in each bar of a return window: the window's
    rows times the signed notional per symbol. Built once a bar in O(bars x symbols) and moved
    per approved order in O(bars), so a VaR/ES limit costs O(bars) per order. A symbol without
    a column, or a bar without a return, counts as no move."""

    def __init__(
        self, returns: np.ndarray, columns: Mapping[str, int], values: Mapping[str, float]
    ) -> None:
        self.returns, self.columns = returns, columns
        notional = np.zeros(returns.shape[1])
        for symbol, value in values.items():
            if symbol in columns:
                notional[columns[symbol]] += value
        self.pnl = returns @ notional

    def with_change(self, symbol: str, delta: float) -> np.ndarray:
        """The scenario P&L with ``delta`` more notional in ``symbol``."""
        j = self.columns.get(symbol)
        return self.pnl if j is None or delta == 0 else self.pnl + self.returns[:, j] * delta

    def add(self, symbol: str, delta: float) -> None:
        self.pnl = self.with_change(symbol, delta)


# --- the methods, for one series ------------------------------------------------------------


def _historical(r: np.ndarray, level: float, horizon: int) -> RiskEstimate:
    return _empirical(_compound(r, horizon), level)


def _parametric(
    r: np.ndarray, level: float, horizon: int, *, cornish_fisher: bool = False
) -> RiskEstimate:
    mean, sd = r.mean() * horizon, r.std(ddof=1) * math.sqrt(horizon)
    if not cornish_fisher:
        return _normal(mean, sd, level)
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
    return _empirical(np.prod(1 + draws, axis=0) - 1, level)


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


# --- portfolios -----------------------------------------------------------------------------


def _covariance(frame: np.ndarray) -> np.ndarray:
    return LedoitWolf().fit(frame).covariance_


def _portfolio_monte_carlo(
    frame: np.ndarray,
    w: np.ndarray,
    level: float,
    horizon: int,
    paths: int,
    seed: int,
    distribution: str,
    df: float | None,
) -> RiskEstimate:
    if distribution not in ("normal", "t"):
        raise ValueError(f"distribution must be normal or t, got {distribution!r}")
    mean, chol = frame.mean(axis=0), np.linalg.cholesky(_covariance(frame))
    if distribution == "t" and df is None:
        df = stats.t.fit(frame @ w)[0]
    if distribution == "t" and df <= 2:
        raise ValueError(f"t degrees of freedom {df:.2f} <= 2 have no variance: pass df > 2")
    rng = np.random.default_rng(seed)
    growth = np.ones((paths, frame.shape[1]))
    for _ in range(horizon):
        shocks = rng.standard_normal((paths, frame.shape[1])) @ chol.T
        if distribution == "t":  # a scale mixture with the same covariance
            shocks *= np.sqrt((df - 2) / rng.chisquare(df, (paths, 1)))
        growth *= 1 + mean + shocks
    return _empirical((growth - 1) @ w, level)


# --- shared pieces --------------------------------------------------------------------------


def _normal(mean: float, sd: float, level: float) -> RiskEstimate:
    z = stats.norm.ppf(level)
    return RiskEstimate(float(sd * z - mean), float(sd * stats.norm.pdf(z) / (1 - level) - mean))


def _empirical(x: np.ndarray, level: float) -> RiskEstimate:
    """empyrical's value_at_risk and conditional_value_at_risk at cutoff 1 - level, negated."""
    position = (len(x) - 1) * (1 - level)  # numpy.percentile's linear interpolation
    k = int(position)
    ordered = np.partition(x, (k, k + 1))  # one partial sort serves both
    low, high = ordered[k], ordered[k + 1]
    var = low + (high - low) * (position - k)
    return RiskEstimate(float(-var), float(-ordered[: k + 1].mean()))


def _compound(r: np.ndarray, horizon: int) -> np.ndarray:
    """Overlapping ``horizon``-bar compounded returns along the first axis."""
    if horizon == 1:
        return r
    if len(r) < horizon + 1:
        raise ValueError(f"{len(r)} bars give fewer than 2 windows of {horizon} bars")
    return np.prod(1 + sliding_window_view(r, horizon, axis=0), axis=-1) - 1


def _check(level: float, horizon: int, method: str) -> None:
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


def _finite(a: np.ndarray, what: str) -> np.ndarray:
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
    return _finite(r, "returns")


def _matrix(returns_matrix) -> np.ndarray:
    frame = np.asarray(returns_matrix, dtype=float)
    if frame.ndim != 2 or len(frame) < 2:
        raise ValueError(f"returns_matrix must be (bars >= 2, assets), got shape {frame.shape}")
    return _finite(frame, "returns_matrix")


def _holdings(returns_matrix, weights_or_notional) -> np.ndarray:
    held = weights_or_notional
    if isinstance(returns_matrix, pd.DataFrame) and isinstance(held, pd.Series | Mapping):
        held = pd.Series(held, dtype=float)
        missing = sorted(set(held.index) - set(returns_matrix.columns))
        if missing:
            raise ValueError(f"holdings in {', '.join(map(str, missing))} have no returns")
        held = held.reindex(returns_matrix.columns, fill_value=0.0)
    w = np.asarray(held, dtype=float)
    n = np.shape(returns_matrix)[1]
    if w.shape != (n,):
        raise ValueError(f"weights_or_notional must have one value per asset ({n}), got {w.shape}")
    return _finite(w, "weights_or_notional")
