"""Performance metrics of a per-bar simple return series, each a plain function under stated
``Conventions`` - the one implementation of each in QTIS (the ``path_*`` forms take many series
at once, for the bootstrap). The definitions are empyrical's (tests hold them to it within
1e-8), so a user's numbers match the library they know; where empyrical has no such metric
(drawdown duration, hit rate, profit factor) the docstring says what is counted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quant.conventions import Conventions
from quant.risk import expected_shortfall as _expected_shortfall
from quant.risk import value_at_risk as _value_at_risk

DEFAULT = Conventions()


def curve_returns(initial: float, equity) -> np.ndarray:
    """Simple returns per bar of an equity curve, the first from the starting capital."""
    curve = np.r_[initial, np.asarray(equity, dtype=float)]
    return np.diff(curve) / curve[:-1]


def as_returns(returns) -> np.ndarray:
    """A 1-D float array without NaNs (a bar without a return counts as absent)."""
    r = np.asarray(returns, dtype=float).ravel()
    return r[~np.isnan(r)]


def total_return(returns) -> float:
    r = as_returns(returns)
    return float(np.prod(1 + r) - 1) if len(r) else math.nan


def cagr(returns, c: Conventions = DEFAULT) -> float:
    """Compound annual growth: the final wealth to the power of 1 / years (NaN below zero)."""
    r = as_returns(returns)
    return float(path_cagr(r[None, :], c)[0]) if len(r) else math.nan


def path_cagr(paths: np.ndarray, c: Conventions = DEFAULT) -> np.ndarray:
    """CAGR of each row of ``paths`` (bars along axis 1), NaN where the wealth ends below 0."""
    ending = np.prod(1 + paths, axis=1)
    with np.errstate(invalid="ignore"):
        grown = np.where(ending >= 0, ending, np.nan) ** (c.periods_per_year / paths.shape[1])
    return grown - 1


def volatility(returns, c: Conventions = DEFAULT) -> float:
    r = as_returns(returns)
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=c.ddof) * math.sqrt(c.periods_per_year))


def _excess(returns, c: Conventions) -> np.ndarray:
    return as_returns(returns) - c.risk_free_per_bar


def sharpe(returns, c: Conventions = DEFAULT) -> float:
    """Mean excess return over its standard deviation, annualized; NaN for a constant series
    (no dispersion: the ratio is undefined, not a huge number). A per-period Sharpe ratio is
    this under ``periods_per_year=1``."""
    r = as_returns(returns)
    return float(path_sharpe(r[None, :], c)[0]) if len(r) >= 2 else math.nan


def path_sharpe(paths: np.ndarray, c: Conventions = DEFAULT) -> np.ndarray:
    """Sharpe of each row of ``paths`` (bars along axis 1), NaN where a row is constant."""
    x = paths - c.risk_free_per_bar
    sd = np.std(x, axis=1, ddof=c.ddof)
    constant = x.max(axis=1) == x.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x.mean(axis=1) / sd * math.sqrt(c.periods_per_year)
    return np.where(constant, np.nan, out)


def downside_deviation(returns, c: Conventions = DEFAULT) -> float:
    """Root mean square of the shortfalls below the risk-free rate over all bars, annualized."""
    x = _excess(returns, c)
    if not len(x):
        return math.nan
    return float(math.sqrt(np.mean(np.minimum(x, 0.0) ** 2)) * math.sqrt(c.periods_per_year))


def sortino(returns, c: Conventions = DEFAULT) -> float:
    """Annualized mean excess return over the downside deviation (NaN with no shortfall)."""
    x = _excess(returns, c)
    down = downside_deviation(returns, c)
    if len(x) < 2 or not down > 0:
        return math.nan
    return float(x.mean() * c.periods_per_year / down)


def drawdowns(returns) -> np.ndarray:
    """Per bar: the compounded curve's fall from its running peak (the start counts as one)."""
    return path_drawdowns(as_returns(returns)[None, :])[0]


def path_drawdowns(paths: np.ndarray) -> np.ndarray:
    """``drawdowns`` of each row of ``paths`` (bars along axis 1)."""
    equity = np.cumprod(1 + paths, axis=1)
    ones = np.ones((len(paths), 1))
    peaks = np.maximum.accumulate(np.hstack([ones, equity]), axis=1)[:, 1:]
    return equity / peaks - 1


def max_drawdown(returns) -> float:
    """The deepest drawdown, as a negative fraction (0: never below a peak)."""
    dd = drawdowns(returns)
    return float(dd.min()) if len(dd) else math.nan


def max_drawdown_duration(returns) -> int:
    """The longest run of consecutive bars spent below a previous peak."""
    under = drawdowns(returns) < 0
    longest = run = 0
    for below in under:
        run = run + 1 if below else 0
        longest = max(longest, run)
    return longest


def calmar(returns, c: Conventions = DEFAULT) -> float:
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return math.nan
    ratio = cagr(returns, c) / abs(mdd)
    return ratio if math.isfinite(ratio) else math.nan


def hit_rate(returns) -> float:
    """Share of the bars with a non-zero return that gained (flat bars make no call)."""
    r = as_returns(returns)
    moved = r[r != 0]
    return float(np.mean(moved > 0)) if len(moved) else math.nan


def profit_factor(returns) -> float:
    """Sum of the gaining bars' returns over the losing bars' (inf with gains and no loss)."""
    r = as_returns(returns)
    gains, losses = r[r > 0].sum(), -r[r < 0].sum()
    if losses == 0:
        return math.inf if gains > 0 else math.nan
    return float(gains / losses)


def value_at_risk(returns, c: Conventions = DEFAULT) -> float:
    """Historical one-bar VaR at ``c.var_level`` as a positive loss fraction."""
    r = as_returns(returns)
    return _value_at_risk(r, c.var_level) if len(r) >= 2 else math.nan


def expected_shortfall(returns, c: Conventions = DEFAULT) -> float:
    """Historical one-bar ES (mean loss beyond the VaR) as a positive loss fraction."""
    r = as_returns(returns)
    return _expected_shortfall(r, c.var_level) if len(r) >= 2 else math.nan


def alpha_beta(returns, benchmark, c: Conventions = DEFAULT) -> tuple[float, float]:
    """Beta = cov / var of the excess returns; alpha = the mean of what beta does not explain,
    compounded to a year. Bars where either series is NaN are left out."""
    r, b = np.asarray(returns, dtype=float), np.asarray(benchmark, dtype=float)
    if r.shape != b.shape:
        raise ValueError(f"returns {r.shape} and benchmark {b.shape} must align bar by bar")
    ok = ~np.isnan(r) & ~np.isnan(b)
    x, y = r[ok] - c.risk_free_per_bar, b[ok] - c.risk_free_per_bar
    if len(x) < 2:
        return math.nan, math.nan
    centred = y - y.mean()
    variance = np.mean(centred**2)
    if variance < 1e-30:
        return math.nan, math.nan
    beta = float(np.mean(centred * x) / variance)
    alpha = float((np.mean(x - beta * y) + 1) ** c.periods_per_year - 1)
    return alpha, beta


def performance(returns, benchmark=None, conventions: Conventions = DEFAULT) -> dict[str, float]:
    """Every return-based metric of ``returns`` (and alpha, beta against ``benchmark``)."""
    c = conventions
    out = {
        "total_return": total_return(returns),
        "cagr": cagr(returns, c),
        "volatility": volatility(returns, c),
        "sharpe": sharpe(returns, c),
        "sortino": sortino(returns, c),
        "calmar": calmar(returns, c),
        "max_drawdown": max_drawdown(returns),
        "max_drawdown_duration": max_drawdown_duration(returns),
        "hit_rate": hit_rate(returns),
        "profit_factor": profit_factor(returns),
        "value_at_risk": value_at_risk(returns, c),
        "expected_shortfall": expected_shortfall(returns, c),
    }
    if benchmark is not None:
        out["alpha"], out["beta"] = alpha_beta(returns, benchmark, c)
    return out


# --- series for charts ------------------------------------------------------------------------


def rolling_sharpe(returns: pd.Series, c: Conventions = DEFAULT) -> pd.Series:
    x = returns - c.risk_free_per_bar
    window = x.rolling(c.rolling_window)
    sd = window.std(ddof=c.ddof)
    return (window.mean() / sd.where(sd > 1e-15)) * math.sqrt(c.periods_per_year)


def rolling_volatility(returns: pd.Series, c: Conventions = DEFAULT) -> pd.Series:
    return returns.rolling(c.rolling_window).std(ddof=c.ddof) * math.sqrt(c.periods_per_year)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns by calendar month: years as rows, months 1-12 as columns."""
    index = pd.DatetimeIndex(returns.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    grouped = (1 + returns.set_axis(index)).groupby([index.year, index.month]).prod() - 1
    table = grouped.unstack().reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table
