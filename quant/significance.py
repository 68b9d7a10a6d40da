"""The statistics a promotion gate rests on: is a challenger's edge real, or luck and selection?

- Diebold-Mariano: are the challenger's forecast losses lower than the champion's on the same
  bars, with a HAC variance for overlapping h-bar labels and the Harvey-Leybourne-Newbold
  small-sample correction.
- Probabilistic and deflated Sharpe ratio (Bailey & Lopez de Prado, 2012/2014): the probability
  that the true Sharpe ratio exceeds a benchmark, given skewness, kurtosis and track-record length;
  deflated, the benchmark is the Sharpe ratio the best of ``n_trials`` unskilled trials would show.
- Probability of backtest overfitting (Bailey et al., 2017) by combinatorially symmetric
  cross-validation: how often the configuration that is best in sample is below the median out of
  sample.

Sharpe ratios here are per period (not annualized), as the formulas require.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from quant.conventions import PER_PERIOD
from quant.performance import path_sharpe, sharpe


@dataclass(frozen=True)
class DieboldMariano:
    statistic: float  # > 0: the challenger's losses are lower
    p_value: float  # one-sided: H0 the challenger is not better
    mean_loss_difference: float  # champion loss - challenger loss, per observation
    n: int
    horizon: int

    def to_dict(self) -> dict:
        return asdict(self)


def diebold_mariano(
    champion_loss: np.ndarray, challenger_loss: np.ndarray, horizon: int = 1
) -> DieboldMariano:
    """One-sided Diebold-Mariano test on paired losses (e.g. squared errors on the same bars in
    time order). h-step-ahead forecast errors are autocorrelated up to lag h-1, so the variance of
    the mean difference is Newey-West with h-1 lags (rectangular, as in Diebold-Mariano), falling
    back to Bartlett weights when that estimate is not positive."""
    a = np.asarray(champion_loss, dtype=np.float64)
    b = np.asarray(challenger_loss, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("champion and challenger losses must be 1-D arrays of the same bars")
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = len(d)
    if n < 10:
        raise ValueError(f"Diebold-Mariano needs at least 10 paired losses, got {n}")
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    mean = float(d.mean())
    centred = d - mean
    gamma = [float(centred @ centred) / n]
    gamma += [float(centred[k:] @ centred[:-k]) / n for k in range(1, min(horizon, n))]
    variance = gamma[0] + 2 * sum(gamma[1:])
    if variance <= 0:
        lags = len(gamma) - 1
        variance = gamma[0] + 2 * sum((1 - k / (lags + 1)) * g for k, g in enumerate(gamma[1:], 1))
    if variance <= 0:  # identical losses
        return DieboldMariano(0.0, 0.5, mean, n, horizon)
    dm = mean / math.sqrt(variance / n)
    # Harvey, Leybourne & Newbold (1997): small-sample correction, Student t with n-1 df
    h = horizon
    dm *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return DieboldMariano(float(dm), float(stats.t.sf(dm, df=n - 1)), mean, n, horizon)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > benchmark) for an estimate from ``n_obs`` returns with this skewness and
    (non-excess) kurtosis; all Sharpe ratios per period."""
    if n_obs < 2:
        raise ValueError("the probabilistic Sharpe ratio needs at least 2 returns")
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if spread <= 0:
        raise ValueError("skewness and kurtosis give a non-positive Sharpe variance")
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread)))


def expected_max_sharpe(n_trials: int, trial_variance: float, trial_mean: float = 0.0) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less trials is expected to show, given
    the variance of the trials' Sharpe ratios (the false strategy theorem)."""
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    if n_trials == 1:
        return trial_mean
    gamma = np.euler_gamma
    z = (1 - gamma) * stats.norm.ppf(1 - 1 / n_trials) + gamma * stats.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return float(trial_mean + math.sqrt(trial_variance) * z)


@dataclass(frozen=True)
class DeflatedSharpe:
    sharpe: float  # per period
    benchmark: float  # expected maximum Sharpe of the trials (per period)
    probability: float  # the deflated Sharpe ratio: P(true Sharpe > benchmark)
    n_obs: int
    n_trials: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict:
        return asdict(self)


def deflated_sharpe_ratio(
    returns: np.ndarray, n_trials: int, trial_variance: float | None = None
) -> DeflatedSharpe:
    """Deflated Sharpe ratio of a return series chosen as the best of ``n_trials``.
    ``trial_variance`` is the variance of the trials' per-period Sharpe ratios; unknown, it is the
    variance of a Sharpe estimate from this many returns, (1 + SR^2 / 2) / (n - 1)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = len(r)
    if n < 3:
        raise ValueError(f"the deflated Sharpe ratio needs at least 3 returns, got {n}")
    sr = sharpe(r, PER_PERIOD)
    moved = math.isfinite(sr)  # a constant series has Sharpe 0 and a normal's moments here
    sr = sr if moved else 0.0
    skew = float(stats.skew(r)) if moved else 0.0
    kurtosis = float(stats.kurtosis(r, fisher=False)) if moved else 3.0
    if trial_variance is None:
        trial_variance = (1 + sr**2 / 2) / (n - 1)
    benchmark = expected_max_sharpe(n_trials, trial_variance)
    probability = probabilistic_sharpe_ratio(sr, benchmark, n, skew, kurtosis)
    return DeflatedSharpe(sr, benchmark, probability, n, n_trials, skew, kurtosis)


@dataclass(frozen=True)
class BacktestOverfitting:
    probability: float  # share of splits whose in-sample best is below the OOS median
    logits: tuple[float, ...]  # per split: log(rank / (1 - rank)) of the IS best out of sample
    n_splits: int
    n_configurations: int

    def to_dict(self) -> dict:
        return asdict(self)


def probability_of_backtest_overfitting(
    performance: np.ndarray, n_blocks: int = 10
) -> BacktestOverfitting:
    """CSCV: ``performance`` is (periods, configurations) of per-period returns or scores in time
    order. The periods are cut into ``n_blocks`` (even) blocks; every half of them is once the
    in-sample set and the rest out of sample; each configuration is scored by its Sharpe ratio
    on each side."""
    m = np.asarray(performance, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("performance must be (periods, configurations) with >= 2 configurations")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError("n_blocks must be an even number >= 2")
    if m.shape[0] < 2 * n_blocks:
        raise ValueError(f"{m.shape[0]} periods are too few for {n_blocks} blocks")
    blocks = np.array_split(np.arange(m.shape[0]), n_blocks)

    def scores(rows: np.ndarray) -> np.ndarray:  # per configuration; 0 where it never moved
        return np.nan_to_num(path_sharpe(m[rows].T, PER_PERIOD), nan=0.0)

    logits = []
    n_conf = m.shape[1]
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(n_blocks) if i not in chosen])
        best = int(np.argmax(scores(inside)))
        oos = scores(outside)
        rank = (stats.rankdata(oos)[best]) / (n_conf + 1)  # in (0, 1)
        logits.append(float(math.log(rank / (1 - rank))))
    pbo = float(np.mean(np.asarray(logits) <= 0))
    return BacktestOverfitting(pbo, tuple(logits), len(logits), n_conf)
