"""Intervals, information coefficients and directional accuracy against hand-computed cases
and their stated coverage; the model-evaluation Sharpe (risk-free 0) against empyrical."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest
from scipy import stats

from quant.intervals import (
    cross_sectional_ic,
    directional_accuracy,
    information_coefficients,
    mean_interval,
    sharpe_interval,
)
from quant.performance import max_drawdown

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("seed", range(5))
def test_evaluation_sharpe_and_drawdown_match_empyrical(seed):
    r = np.random.default_rng(seed).normal(0.0004, 0.01, 750)
    assert sharpe_interval(r).value == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=0), rel=1e-12
    )
    assert max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)


def test_hit_rate_and_binomial_p_value():
    true = np.array([1, -1, 1, -1, 1, 0, 1, 1, -1, 1], dtype=float)
    pred = np.array([1, -1, 1, 1, 1, 1, -1, 1, -1, 1], dtype=float)
    out = directional_accuracy(pred, true)
    assert out["n"] == 9 and out["accuracy"].value == pytest.approx(7 / 9)
    # P(X >= 7 | n=9, p=0.5) = (36 + 9 + 1) / 512
    assert out["p_value"] == pytest.approx(46 / 512)
    assert out["accuracy"].low < 7 / 9 < out["accuracy"].high


def test_information_coefficient_kinds():
    ts = np.repeat(np.arange(100), 10)
    y = RNG.normal(size=1000)
    pred = y + RNG.normal(scale=0.5, size=1000)
    cs = information_coefficients(pred, y, ts)
    assert cs["kind"] == "cross-sectional" and 0.8 < cs["ic"].value < 0.95
    one = information_coefficients(pred[::10], y[::10], ts[::10])
    assert one["kind"] == "time-series" and one["ic"].low < one["ic"].value < one["ic"].high


def test_overlapping_labels_widen_the_intervals():
    """Means of h-bar overlapping outcomes (a moving sum of noise, true mean 0): the i.i.d.
    interval misses 0 far more often than 5%; the overlap-aware (Newey-West) one does not."""
    h, misses = 10, {1: 0, 10: 0}
    for seed in range(200):
        noise = np.random.default_rng(seed).normal(size=1000 + h)
        overlapping = np.convolve(noise, np.ones(h), mode="valid")[:1000]
        for overlap in misses:
            ci = mean_interval(overlapping, overlap)
            misses[overlap] += not ci.low <= 0 <= ci.high
    assert misses[1] > 60 and misses[10] < 20, misses
    calls = np.random.default_rng(0).normal(size=5000)
    naive = directional_accuracy(calls, calls + 1.5)
    deflated = directional_accuracy(calls, calls + 1.5, overlap=20)
    assert deflated["accuracy"].value == naive["accuracy"].value
    assert deflated["accuracy"].high - deflated["accuracy"].low > 3 * (
        naive["accuracy"].high - naive["accuracy"].low
    )


def test_cross_sectional_ic_per_bar_is_what_the_ic_averages():
    rng = np.random.default_rng(5)
    ts = np.repeat(np.arange(40), 8)
    true = rng.normal(size=len(ts))
    pred = 0.3 * true + rng.normal(size=len(ts))
    daily = cross_sectional_ic(pred, true, ts)
    assert len(daily) == 40
    first = ts == 0
    assert daily["ic"].iloc[0] == pytest.approx(np.corrcoef(pred[first], true[first])[0, 1])
    rho = stats.spearmanr(pred[first], true[first]).statistic
    assert daily["rank_ic"].iloc[0] == pytest.approx(rho)
    pooled = information_coefficients(pred, true, ts)
    assert pooled["ic"].value == pytest.approx(daily["ic"].mean())
    assert pooled["rank_ic"].value == pytest.approx(daily["rank_ic"].mean())
    assert cross_sectional_ic(pred[:4], true[:4], ts[:4]).empty  # 4 symbols: no cross-section
    same = np.repeat(rng.normal(size=40), 8).astype(np.float32)  # one forecast for every symbol
    assert cross_sectional_ic(same, true, ts)["ic"].isna().all()
    assert np.isnan(information_coefficients(same, true, ts)["ic"].value)  # undefined, not 0
