"""Confidence intervals of Sharpe, CAGR and max drawdown by resampling the bar returns in
blocks, which keeps their serial dependence (volatility clusters, trends) that an i.i.d.
bootstrap would destroy. Seeded: the same series and conventions give the same intervals."""

from __future__ import annotations

import math
import warnings

import numpy as np
from arch.bootstrap import optimal_block_length

from quant.conventions import Conventions
from quant.intervals import Interval
from quant.performance import (
    DEFAULT,
    as_returns,
    cagr,
    max_drawdown,
    path_cagr,
    path_drawdowns,
    path_sharpe,
    sharpe,
)

MIN_BARS = 20  # fewer returns say too little about their own distribution


def block_length(returns: np.ndarray, c: Conventions = DEFAULT) -> float:
    """The configured block length, or Politis and White's (2004, corrected 2009) automatic
    choice, kept between 1 bar and half the series."""
    if c.bootstrap_block is not None:
        chosen = c.bootstrap_block
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            column = "stationary" if c.bootstrap == "stationary" else "circular"
            chosen = float(optimal_block_length(returns)[column].iloc[0])
        chosen = chosen if math.isfinite(chosen) else 1.0
    return float(min(max(chosen, 1.0), len(returns) / 2))


def resample_indices(
    n: int, paths: int, block: float, method: str, rng: np.random.Generator
) -> np.ndarray:
    """(paths, n) indices into a series of n bars. Stationary (Politis-Romano): blocks of
    geometric length with mean ``block`` from uniform starts, wrapping around the end; moving
    block (Kunsch): blocks of ``round(block)`` bars from uniform starts, concatenated."""
    if method == "stationary":
        starts = rng.integers(0, n, (paths, n))
        fresh = rng.random((paths, n)) < 1.0 / block
        fresh[:, 0] = True
        position = np.arange(n)
        began = np.maximum.accumulate(np.where(fresh, position, 0), axis=1)
        return (np.take_along_axis(starts, began, axis=1) + position - began) % n
    if method == "moving-block":
        size = round(block)
        count = -(-n // size)
        starts = rng.integers(0, n - size + 1, (paths, count))
        return (starts[:, :, None] + np.arange(size)).reshape(paths, -1)[:, :n]
    raise ValueError(f"bootstrap must be stationary or moving-block, got {method!r}")


def bootstrap_intervals(returns, c: Conventions = DEFAULT) -> dict[str, Interval]:
    """Sharpe, CAGR and max drawdown, each with its percentile interval at ``c.ci_level``
    (NaN bounds when the series is shorter than MIN_BARS)."""
    r = as_returns(returns)
    points = {"sharpe": sharpe(r, c), "cagr": cagr(r, c), "max_drawdown": max_drawdown(r)}
    if len(r) < MIN_BARS:
        return {k: Interval(v, math.nan, math.nan) for k, v in points.items()}
    rng = np.random.default_rng(c.seed)
    paths = r[resample_indices(len(r), c.bootstrap_paths, block_length(r, c), c.bootstrap, rng)]
    samples = {
        "sharpe": path_sharpe(paths, c),
        "cagr": path_cagr(paths, c),
        "max_drawdown": path_drawdowns(paths).min(axis=1),
    }
    tail = (1 - c.ci_level) / 2 * 100
    out = {}
    for name, values in samples.items():
        values = values[np.isfinite(values)]
        low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (math.nan,) * 2
        out[name] = Interval(points[name], float(low), float(high))
    return out
