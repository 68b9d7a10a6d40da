"""Out-of-sample evaluation: errors, information coefficients, hit rates and a simple trading
rule after costs, each with an interval. Conventions (stated once, tested against empyrical):
returns are per bar; Sharpe = mean / std (ddof=1) * sqrt(periods_per_year), risk-free 0;
drawdowns on compounded simple returns; costs charged on the change in position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    ok = ~np.isnan(pred) & ~np.isnan(true)
    return float(np.mean((pred[ok] - true[ok]) ** 2)) if ok.any() else math.nan


def _mean_interval(values: np.ndarray, overlap: int = 1, level: float = 0.95) -> Interval:
    """Mean with a t interval; with ``overlap`` > 1 (values from labels spanning that many bars,
    so neighbours share outcomes) the standard error is Newey-West's, Bartlett bandwidth
    2 x overlap (lag overlap - 1 alone leaves a third of the autocovariance out)."""
    from arch.covariance.kernel import Bartlett

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


def _corr_interval(r: float, n: int, level: float = 0.95) -> Interval:
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
        big = frame[frame["ts"].isin(sizes[sizes >= min_cross_section].index)]
        grouped = big.groupby("ts")
        ic = grouped.apply(lambda g: g["p"].corr(g["y"]), include_groups=False).to_numpy()
        ric = grouped.apply(
            lambda g: g["p"].corr(g["y"], method="spearman"), include_groups=False
        ).to_numpy()
        return {
            "kind": "cross-sectional",
            "ic": _mean_interval(ic, overlap),
            "rank_ic": _mean_interval(ric, overlap),
        }
    n = len(frame)
    ic = frame["p"].corr(frame["y"]) if n > 2 else math.nan
    ric = frame["p"].corr(frame["y"], method="spearman") if n > 2 else math.nan
    n_eff = n // max(overlap, 1)
    return {
        "kind": "time-series",
        "ic": _corr_interval(ic, n_eff),
        "rank_ic": _corr_interval(ric, n_eff),
    }


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


def volatility_forecast(
    forecast: np.ndarray, realized: np.ndarray, reference: np.ndarray, overlap: int = 1
) -> dict[str, object]:
    """How good a volatility forecast was: RMSE and QLIKE against the realized volatility
    (QLIKE = log f^2 + r^2 / f^2, Patton's loss that is robust to a noisy realized proxy; compare
    it between forecasts only), and how often it called the direction of change from
    ``reference`` (the trailing volatility known when the forecast was made) right."""
    ok = np.isfinite(forecast) & np.isfinite(realized) & np.isfinite(reference) & (forecast > 0)
    f, r, ref = forecast[ok], realized[ok], reference[ok]
    direction = directional_accuracy(f - ref, r - ref, overlap)
    return {
        "rmse": float(np.sqrt(np.mean((f - r) ** 2))) if ok.any() else math.nan,
        "qlike": float(np.mean(np.log(f**2) + r**2 / f**2)) if ok.any() else math.nan,
        "direction": direction["accuracy"],
        "direction_p_value": direction["p_value"],
        "n": int(ok.sum()),
    }


def sharpe_ratio(returns: np.ndarray, periods_per_year: float = 252) -> float:
    r = returns[~np.isnan(returns)]
    if len(r) < 2 or r.std(ddof=1) == 0:
        return math.nan
    return float(r.mean() / r.std(ddof=1) * math.sqrt(periods_per_year))


def sharpe_interval(returns: np.ndarray, periods_per_year: float = 252) -> Interval:
    """Sharpe with Lo's (2002) i.i.d. standard error."""
    sr = sharpe_ratio(returns, periods_per_year)
    n = int((~np.isnan(returns)).sum())
    if not np.isfinite(sr) or n < 2:
        return Interval(sr, math.nan, math.nan)
    per_bar = sr / math.sqrt(periods_per_year)
    se = math.sqrt((1 + 0.5 * per_bar**2) / n) * math.sqrt(periods_per_year)
    return Interval(sr, sr - 1.96 * se, sr + 1.96 * se)


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded equity curve (negative, like empyrical)."""
    r = np.nan_to_num(returns)
    equity = np.cumprod(1 + r)
    peaks = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    return float(np.min(equity / peaks - 1)) if len(r) else math.nan


@dataclass(frozen=True)
class StrategyResult:
    returns: np.ndarray  # per bar, after costs
    times: np.ndarray
    sharpe: Interval
    max_drawdown: float
    turnover: float  # mean one-way change in gross position per bar
    annual_return: float

    def summary(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("returns")
        out.pop("times")
        return out


def strategy(
    signal: np.ndarray,
    next_log_return: np.ndarray,
    symbols: np.ndarray,
    ts: np.ndarray,
    *,
    cost_bps: float = 5.0,
    long_short: bool = True,
    periods_per_year: float = 252,
) -> StrategyResult:
    """Trade the sign of ``signal`` (long/short, or long/flat) equally weighted across the
    symbols of each bar, hold one bar, pay ``cost_bps`` per unit of position traded."""
    frame = pd.DataFrame({"symbol": symbols, "ts": ts, "s": signal, "r": next_log_return})
    frame = frame.dropna().sort_values(["ts", "symbol"])
    position = np.sign(frame["s"]) if long_short else (frame["s"] > 0).astype(float)
    counts = frame.groupby("ts")["symbol"].transform("size")
    frame["w"] = position / counts
    weights = frame.pivot(index="ts", columns="symbol", values="w").fillna(0.0)
    simple = np.expm1(frame.pivot(index="ts", columns="symbol", values="r")).fillna(0.0)
    gross = (weights * simple).sum(axis=1).to_numpy()
    traded = weights.diff().abs().sum(axis=1).to_numpy()
    traded[0] = np.abs(weights.iloc[0]).sum()
    net = gross - traded * cost_bps / 1e4
    years = len(net) / periods_per_year
    total = float(np.prod(1 + net)) if len(net) else math.nan
    return StrategyResult(
        returns=net,
        times=weights.index.to_numpy(),
        sharpe=sharpe_interval(net, periods_per_year),
        max_drawdown=max_drawdown(net),
        turnover=float(traded.mean()) if len(traded) else math.nan,
        annual_return=total ** (1 / years) - 1 if years > 0 else math.nan,
    )
