"""Pairs for statistical arbitrage: which symbols' log prices are cointegrated over a formation
window, with what hedge ratio, and how far their spread is from its mean.

Engle-Granger (``statsmodels.tsa.stattools.coint``, both orderings, the smaller p-value kept) or
Johansen (``statsmodels.tsa.vector_ar.vecm.coint_johansen``, trace test against its 95% critical
value). The selection sees only the prices it is given: what the caller passes is all it knows,
which is what keeps a trading run point in time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from statsmodels.tsa.stattools import coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen

Method = Literal["engle-granger", "johansen"]
JOHANSEN_95 = 1  # column of coint_johansen's critical values (90%, 95%, 99%)


@dataclass(frozen=True)
class Pair:
    """Spread = log p[first] - hedge_ratio * log p[second] - intercept; ``mean`` and ``sd`` of
    it over the formation window give its z-score. ``score``: the Engle-Granger p-value, or
    for Johansen the 95% critical value over the trace statistic (below 1 passes); lower is
    stronger either way."""

    first: int
    second: int
    hedge_ratio: float
    intercept: float
    mean: float
    sd: float
    score: float

    def spread(self, log_prices: np.ndarray) -> np.ndarray | float:
        """The spread of one bar's (or a (bars, symbols) block's) log prices."""
        lp = np.asarray(log_prices)
        return lp[..., self.first] - self.hedge_ratio * lp[..., self.second] - self.intercept

    def zscore(self, log_prices: np.ndarray) -> np.ndarray | float:
        return (self.spread(log_prices) - self.mean) / self.sd


def select_pairs(
    log_prices: np.ndarray,
    *,
    method: Method = "engle-granger",
    significance: float = 0.05,
    max_pairs: int = 2,
    min_hedge_ratio: float = 0.1,
) -> list[Pair]:
    """The strongest cointegrated pairs over ``log_prices`` (bars, symbols), no symbol in two
    pairs. Symbols with a missing bar in the window are not candidates. A hedge ratio under
    ``min_hedge_ratio`` (or negative) is refused: such a "pair" is one stationary price."""
    lp = np.asarray(log_prices, dtype=float)
    if lp.ndim != 2 or lp.shape[0] < 30:
        raise ValueError(f"pair selection needs (bars >= 30, symbols) log prices, got {lp.shape}")
    if not 0 < significance < 1:
        raise ValueError(f"significance must be in (0, 1), got {significance}")
    complete = np.flatnonzero(np.isfinite(lp).all(axis=0))
    found = []
    for i, j in itertools.combinations(complete.tolist(), 2):
        pair = _test(lp, i, j, method, significance)
        if pair is not None and pair.hedge_ratio >= min_hedge_ratio and pair.sd > 0:
            found.append(pair)
    chosen, used = [], set()
    for pair in sorted(found, key=lambda p: (p.score, p.first, p.second)):
        if len(chosen) < max_pairs and not {pair.first, pair.second} & used:
            chosen.append(pair)
            used |= {pair.first, pair.second}
    return chosen


def _test(lp: np.ndarray, i: int, j: int, method: Method, significance: float) -> Pair | None:
    if method == "engle-granger":
        return _engle_granger(lp, i, j, significance)
    if method == "johansen":
        return _johansen(lp, i, j, significance)
    raise ValueError(f"unknown cointegration method {method!r}: engle-granger or johansen")


def _engle_granger(lp: np.ndarray, i: int, j: int, significance: float) -> Pair | None:
    best = None
    for y, x in ((i, j), (j, i)):
        _, pvalue, _ = coint(lp[:, y], lp[:, x], trend="c", autolag="aic")
        if pvalue < significance and (best is None or pvalue < best[2]):
            best = (y, x, float(pvalue))
    if best is None:
        return None
    y, x, pvalue = best
    slope, intercept = np.polyfit(lp[:, x], lp[:, y], 1)
    return _pair(lp, y, x, float(slope), float(intercept), pvalue)


def _johansen(lp: np.ndarray, i: int, j: int, significance: float) -> Pair | None:
    if significance != 0.05:
        raise ValueError("the Johansen test is read at its 95% critical value: significance 0.05")
    result = coint_johansen(lp[:, [i, j]], det_order=0, k_ar_diff=1)
    trace, critical = float(result.lr1[0]), float(result.cvt[0, JOHANSEN_95])
    if trace <= critical:
        return None
    vector = result.evec[:, 0]
    if vector[0] == 0:
        return None
    slope = float(-vector[1] / vector[0])
    intercept = float(np.mean(lp[:, i] - slope * lp[:, j]))
    return _pair(lp, i, j, slope, intercept, critical / trace)


def _pair(lp: np.ndarray, y: int, x: int, slope: float, intercept: float, score: float) -> Pair:
    spread = lp[:, y] - slope * lp[:, x] - intercept
    return Pair(y, x, slope, intercept, float(spread.mean()), float(spread.std(ddof=1)), score)


def leg_weights(pair: Pair, direction: int) -> tuple[float, float]:
    """Strengths of the two legs for a spread position ``direction`` (+1 long: buy first, sell
    second; -1 short): money in the second leg is the hedge ratio times the first's (a log-price
    spread moves with returns), both scaled so the larger leg is 1."""
    scale = max(1.0, abs(pair.hedge_ratio))
    return direction / scale, -direction * pair.hedge_ratio / scale
