"""Backtests of VaR forecasts: did the losses exceed the VaR as often as the level promises
(Kupiec), and do the exceptions come one at a time or in clusters (Christoffersen)?

Neither statsmodels, arch nor skfolio has these tests (checked: statsmodels 0.15, arch 8,
skfolio 1.0.5), so they are written here from their likelihood ratios, with the usual
convention 0 log 0 = 0 (a count of zero contributes nothing):

- Kupiec proportion of failures: x exceptions in n bars, expected rate p = 1 - level,
  observed rate p^ = x / n:
  LR_pof = -2 [(n - x) log(1 - p) + x log p - (n - x) log(1 - p^) - x log p^] ~ chi2(1).
  No exceptions: LR = -2 n log(1 - p); all exceptions: LR = -2 n log p.
- Christoffersen independence: transitions of the exception indicator from bar t-1 to t,
  n_ij = #(I_{t-1} = i, I_t = j); pi0 = n01 / (n00 + n01), pi1 = n11 / (n10 + n11),
  pi = (n01 + n11) / (n - 1):
  LR_ind = -2 [(n00 + n10) log(1 - pi) + (n01 + n11) log pi
               - n00 log(1 - pi0) - n01 log pi0 - n10 log(1 - pi1) - n11 log pi1] ~ chi2(1).
  With no exception (or no non-exception) pi is 0 (or 1), every term vanishes: LR = 0,
  p-value 1. n11 = 0 (no two exceptions in a row) gives pi1 = 0 and is a finite LR (the
  convention most software uses); an undefined pi (a row of zero transitions) contributes 0.
- Conditional coverage: LR_cc = LR_pof + LR_ind ~ chi2(2) (the common sum; Christoffersen's
  exact form counts the POF on the n - 1 transitions, a difference of one bar).

A small p-value rejects: below 0.05, the VaR is wrong in coverage (Kupiec), lets losses cluster
(independence) or either (conditional coverage).

``rolling_backtest`` runs every VaR method out of sample on a portfolio of fixed weights: the
forecast for bar t uses only bars [t - window, t); each method is refitted every ``refit`` bars
and its VaR held in between (``refit=1``: refitted every bar). The series methods of
``quant.risk`` run on the portfolio's return series, the copula on the assets' returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from quant.copula import aligned_weights, fit_t_copula, simulate_portfolio
from quant.risk import empirical_var_es, finite, risk_measures


@dataclass(frozen=True)
class Kupiec:
    observations: int
    exceptions: int
    expected_rate: float
    rate: float
    statistic: float
    p_value: float


@dataclass(frozen=True)
class Christoffersen:
    n00: int
    n01: int
    n10: int
    n11: int
    statistic: float
    p_value: float


@dataclass(frozen=True)
class CoverageTest:
    """Both tests and their sum, the conditional coverage test (chi2, 2 df)."""

    kupiec: Kupiec
    independence: Christoffersen
    statistic: float
    p_value: float

    def row(self) -> dict[str, float]:
        """One line of a backtest table."""
        k = self.kupiec
        return {
            "observations": k.observations,
            "exceptions": k.exceptions,
            "expected": k.observations * k.expected_rate,
            "rate": k.rate,
            "kupiec_lr": k.statistic,
            "kupiec_p": k.p_value,
            "independence_lr": self.independence.statistic,
            "independence_p": self.independence.p_value,
            "cc_lr": self.statistic,
            "cc_p": self.p_value,
        }


def exceptions(returns, var) -> np.ndarray:
    """True where the loss ``-return`` exceeds the VaR forecast made before it (both positive
    losses; ``var`` a number or one forecast per return)."""
    r = finite(np.asarray(returns, dtype=float), "returns")
    v = finite(np.broadcast_to(np.asarray(var, dtype=float), r.shape), "VaR forecasts")
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {r.shape}")
    return -r > v


def kupiec_pof(hits, level: float) -> Kupiec:
    """Kupiec's proportion-of-failures test of an exception series at VaR ``level``."""
    i = _indicator(hits)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n, x, p = len(i), int(i.sum()), 1 - level
    rate = x / n
    null = _xlogy(n - x, 1 - p) + _xlogy(x, p)
    fitted = _xlogy(n - x, 1 - rate) + _xlogy(x, rate)
    lr = max(0.0, -2 * (null - fitted))  # >= 0 in exact arithmetic; never -0.0
    return Kupiec(n, x, p, rate, lr, float(stats.chi2.sf(lr, 1)))


def christoffersen_independence(hits) -> Christoffersen:
    """Christoffersen's test that an exception does not make the next one likelier."""
    i = _indicator(hits).astype(int)
    if len(i) < 2:
        raise ValueError(f"the independence test needs at least 2 bars, got {len(i)}")
    pairs = 2 * i[:-1] + i[1:]
    n00, n01, n10, n11 = (int(c) for c in np.bincount(pairs, minlength=4))
    pi0 = _ratio(n01, n00 + n01)
    pi1 = _ratio(n11, n10 + n11)
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    null = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    alternative = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    lr = max(0.0, -2 * (null - alternative))
    return Christoffersen(n00, n01, n10, n11, lr, float(stats.chi2.sf(lr, 1)))


def conditional_coverage(hits, level: float) -> CoverageTest:
    """Kupiec, Christoffersen and their sum (chi2 with 2 df) on one exception series."""
    kupiec, independence = kupiec_pof(hits, level), christoffersen_independence(hits)
    lr = kupiec.statistic + independence.statistic
    return CoverageTest(kupiec, independence, lr, float(stats.chi2.sf(lr, 2)))


def backtest_var(returns, var, level: float) -> CoverageTest:
    """The coverage tests of VaR forecasts ``var`` (made before each return) at ``level``."""
    return conditional_coverage(exceptions(returns, var), level)


def _indicator(hits) -> np.ndarray:
    i = np.asarray(hits)
    if i.ndim != 1 or len(i) == 0:
        raise ValueError(f"exceptions must be a non-empty 1-D series, got shape {i.shape}")
    if not np.isin(i, (0, 1)).all():
        raise ValueError("exceptions must be booleans or 0/1")
    return i.astype(bool)


def _xlogy(count: int, p: float) -> float:
    """count * log(p) with 0 log 0 = 0 (p is 0 only where the count is)."""
    return 0.0 if count == 0 else count * math.log(p)


def _ratio(count: int, total: int) -> float:
    """count / total; 0 when nothing was observed (its terms then have zero counts)."""
    return count / total if total else 0.0


# --- the rolling out-of-sample backtest -----------------------------------------------------

# (assets window, weights, levels, paths, seed) -> one VaR per level
Forecaster = Callable[[np.ndarray, np.ndarray, Sequence[float], int, int], list[float]]


def _series_method(method: str, **options) -> Forecaster:
    def forecast(window, w, levels, paths, seed):
        extra = {"paths": paths, "seed": seed} if method == "monte-carlo" else {}
        r = window @ w
        return [risk_measures(r, lv, 1, method, **options, **extra).var for lv in levels]

    return forecast


def _copula(window, w, levels, paths, seed):
    simulated = simulate_portfolio(fit_t_copula(window), w, 1, paths, seed)
    return [empirical_var_es(simulated, lv).var for lv in levels]


METHODS: dict[str, Forecaster] = {
    "historical": _series_method("historical"),
    "parametric": _series_method("parametric"),
    "parametric cornish-fisher": _series_method("parametric", cornish_fisher=True),
    "monte-carlo normal": _series_method("monte-carlo", distribution="normal"),
    "monte-carlo t": _series_method("monte-carlo", distribution="t"),
    "monte-carlo bootstrap": _series_method("monte-carlo", distribution="bootstrap"),
    "evt": _series_method("evt"),
    "copula": _copula,
}


def rolling_var(
    returns_matrix,
    weights,
    levels: Sequence[float] = (0.99,),
    *,
    window: int = 250,
    refit: int = 21,
    last: int | None = None,
    methods: Sequence[str] = tuple(METHODS),
    paths: int = 2_000,
    seed: int = 0,
) -> tuple[pd.Series, dict[float, pd.DataFrame], dict[str, str]]:
    """Out-of-sample 1-bar VaR forecasts of the portfolio ``weights`` of ``returns_matrix``
    (bars x assets, oldest first) for the bars after the first ``window`` (only the ``last``
    of them when given): the realized portfolio returns, the forecasts per level (a column
    per method), and per method the first error that left a forecast missing (NaN)."""
    x = finite(np.asarray(returns_matrix, dtype=float), "returns_matrix")
    w = aligned_weights(returns_matrix, weights)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or window < 20 or refit < 1 or x.ndim != 2:
        raise ValueError(
            f"need a (bars, assets) matrix, window >= 20, refit >= 1 and methods among"
            f" {', '.join(METHODS)}; got shape {x.shape}, window {window}, refit {refit},"
            f" unknown methods {unknown}"
        )
    start = max(window, len(x) - last) if last else window
    if start >= len(x):
        raise ValueError(f"{len(x)} bars leave none to test after a {window}-bar window")
    index = getattr(returns_matrix, "index", pd.RangeIndex(len(x)))[start:]
    forecasts = {lv: np.full((len(x) - start, len(methods)), np.nan) for lv in levels}
    errors: dict[str, str] = {}
    for block, t in enumerate(range(start, len(x), refit)):
        for j, name in enumerate(methods):
            try:
                values = METHODS[name](x[t - window : t], w, levels, paths, seed + block)
            except ValueError as exc:  # EVT: too few exceedances; copula: a flat asset
                errors.setdefault(name, f"bar {t}: {exc}")
                continue
            for lv, value in zip(levels, values, strict=True):
                forecasts[lv][t - start : t - start + refit, j] = value
    tables = {
        lv: pd.DataFrame(f, index=index, columns=list(methods)) for lv, f in forecasts.items()
    }
    return pd.Series(x[start:] @ w, index=index, name="portfolio"), tables, errors


def rolling_backtest(returns_matrix, weights, levels: Sequence[float] = (0.99,), **options):
    """The coverage tests of every method's rolling forecasts (``rolling_var``'s options): a
    row per (level, method) with observations, exceptions, expected, rate, the Kupiec,
    independence and conditional coverage LRs and p-values, and a note where a method could
    not forecast every bar (its statistics are then NaN)."""
    realized, forecasts, errors = rolling_var(returns_matrix, weights, levels, **options)
    rows = []
    for level, table in forecasts.items():
        for method in table.columns:
            row = {"level": level, "method": method}
            var = table[method].to_numpy()
            if np.isnan(var).any():
                row |= {"observations": len(var), "note": errors.get(method, "no forecast")}
            else:
                row |= backtest_var(realized.to_numpy(), var, level).row()
            rows.append(row)
    return pd.DataFrame(rows)
