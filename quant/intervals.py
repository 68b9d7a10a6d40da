"""Estimates with intervals: information coefficients (IC and rank IC, cross-sectional or pooled,
with HAC errors for overlapping labels), directional accuracy against a coin, and Sharpe with
Lo's standard error. Every interval is 95% unless a ``level`` is given."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.covariance.kernel import Bartlett
from scipy import stats

from quant.conventions import Conventions
from quant.performance import sharpe


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def mean_interval(values: np.ndarray, overlap: int = 1, level: float = 0.95) -> Interval:
    """Mean with a t interval; with ``overlap`` > 1 (values from labels spanning that many bars,
    so neighbours share outcomes) the standard error is Newey-West's, Bartlett bandwidth
    2 x overlap (lag overlap - 1 alone leaves a third of the autocovariance out)."""
    values = values[~np.isnan(values)]
    if len(values) < 2:
        v = float(values.mean()) if len(values) else math.nan
        return Interval(v, math.nan, math.nan)
    variance = values.var(ddof=1)
    if overlap > 1:
        long_run = Bartlett(values, bandwidth=2 * overlap, center=True).cov.long_run
        variance = max(float(long_run[0, 0]), variance / overlap)  # never below i.i.d./overlap
    mean, se = values.mean(), math.sqrt(variance / len(values))
    t = stats.t.ppf(0.5 + level / 2, len(values) - 1)
    return Interval(float(mean), float(mean - t * se), float(mean + t * se))


def corr_interval(r: float, n: int, level: float = 0.95) -> Interval:
    """Fisher-z interval of a correlation over n (effectively independent) pairs."""
    if n < 4 or not np.isfinite(r):
        return Interval(r, math.nan, math.nan)
    z, se = np.arctanh(np.clip(r, -0.999999, 0.999999)), 1 / math.sqrt(n - 3)
    q = stats.norm.ppf(0.5 + level / 2)
    return Interval(float(r), float(np.tanh(z - q * se)), float(np.tanh(z + q * se)))


def information_coefficients(
    pred: np.ndarray,
    true: np.ndarray,
    ts: np.ndarray,
    min_cross_section: int = 5,
    overlap: int = 1,
) -> dict[str, object]:
    """IC and rank IC: the mean of per-bar cross-sectional correlations when bars hold at least
    ``min_cross_section`` symbols, otherwise one pooled time-series correlation. ``overlap`` is
    the label horizon in bars: h-bar returns of neighbouring bars overlap, so the intervals use
    a HAC error (cross-sectional) or n / overlap effective pairs (time-series)."""
    frame = pd.DataFrame({"ts": ts, "p": pred, "y": true}).dropna()
    if frame["p"].nunique() < 2:  # a constant forecast has no correlation with anything
        nan = Interval(math.nan, math.nan, math.nan)
        return {"kind": "undefined (constant forecast)", "ic": nan, "rank_ic": nan}
    sizes = frame.groupby("ts").size()
    if len(sizes) and sizes.median() >= min_cross_section:
        daily = _per_bar_ic(frame, min_cross_section)
        return {
            "kind": "cross-sectional",
            "ic": mean_interval(daily["ic"].to_numpy(), overlap),
            "rank_ic": mean_interval(daily["rank_ic"].to_numpy(), overlap),
        }
    n = len(frame)
    ic = frame["p"].corr(frame["y"]) if n > 2 else math.nan
    ric = frame["p"].corr(frame["y"], method="spearman") if n > 2 else math.nan
    n_eff = n // max(overlap, 1)
    return {
        "kind": "time-series",
        "ic": corr_interval(ic, n_eff),
        "rank_ic": corr_interval(ric, n_eff),
    }


def cross_sectional_ic(
    pred: np.ndarray, true: np.ndarray, ts: np.ndarray, min_cross_section: int = 5
) -> pd.DataFrame:
    """Per bar with at least ``min_cross_section`` symbols: the Pearson (``ic``) and Spearman
    (``rank_ic``) correlation of forecasts and outcomes across symbols, indexed by the bar. Its
    mean is the IC; mean / std is the ICIR as Qlib reports it (daily, not annualized)."""
    frame = pd.DataFrame({"ts": ts, "p": pred, "y": true}).dropna()
    return _per_bar_ic(frame, min_cross_section)


def _per_bar_ic(frame: pd.DataFrame, min_cross_section: int) -> pd.DataFrame:
    """Per-bar Pearson and Spearman (Pearson of average ranks) correlations, by group sums
    rather than a Python call per bar (a long test span has thousands of bars)."""
    sizes = frame.groupby("ts")["p"].transform("size")
    big = frame[sizes >= min_cross_section]
    if big.empty:
        return pd.DataFrame({"ic": [], "rank_ic": []}, dtype=float)
    grouped = big.groupby("ts")
    ranks = big.assign(p=grouped["p"].rank(), y=grouped["y"].rank())
    return pd.DataFrame({"ic": _grouped_corr(big), "rank_ic": _grouped_corr(ranks)})


def _grouped_corr(frame: pd.DataFrame) -> pd.Series:
    grouped = frame.groupby("ts")
    dp = frame["p"] - grouped["p"].transform("mean")
    dy = frame["y"] - grouped["y"].transform("mean")
    sums = pd.DataFrame({"ts": frame["ts"], "py": dp * dy, "pp": dp * dp, "yy": dy * dy})
    sums = sums.groupby("ts").sum()
    # a bar whose forecasts (or outcomes) are all equal has no correlation: rounding in the
    # group means must not make one up
    varies = (grouped[["p", "y"]].max() > grouped[["p", "y"]].min()).all(axis=1)
    denominator = np.sqrt(sums["pp"] * sums["yy"]).where(varies)
    return (sums["py"] / denominator).rename(None)


def directional_accuracy(pred: np.ndarray, true: np.ndarray, overlap: int = 1) -> dict[str, object]:
    """Share of non-zero outcomes whose sign a non-zero prediction got right (a zero forecast
    makes no call), a Wilson interval and the one-sided binomial p-value against a coin (50%).
    With ``overlap``-bar labels the interval and test count n / overlap independent calls."""
    ok = ~np.isnan(pred) & ~np.isnan(true) & (true != 0) & (pred != 0)
    n = int(ok.sum())
    if not n:
        return {"accuracy": Interval(math.nan, math.nan, math.nan), "p_value": math.nan, "n": 0}
    hits = int((np.sign(pred[ok]) == np.sign(true[ok])).sum())
    n_eff = max(n // max(overlap, 1), 1)
    hits_eff = round(hits * n_eff / n)
    ci = stats.binomtest(hits_eff, n_eff).proportion_ci(confidence_level=0.95, method="wilson")
    p_value = stats.binomtest(hits_eff, n_eff, 0.5, alternative="greater").pvalue
    return {"accuracy": Interval(hits / n, ci.low, ci.high), "p_value": float(p_value), "n": n}


def sharpe_interval(returns: np.ndarray, periods_per_year: float = 252) -> Interval:
    """Sharpe (risk-free 0) with Lo's (2002) i.i.d. standard error."""
    sr = sharpe(returns, Conventions(periods_per_year=periods_per_year))
    n = int((~np.isnan(returns)).sum())
    if not np.isfinite(sr) or n < 2:
        return Interval(sr, math.nan, math.nan)
    per_bar = sr / math.sqrt(periods_per_year)
    se = math.sqrt((1 + 0.5 * per_bar**2) / n) * math.sqrt(periods_per_year)
    return Interval(sr, sr - 1.96 * se, sr + 1.96 * se)
