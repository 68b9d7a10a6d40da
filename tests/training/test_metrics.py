"""Metric conventions against empyrical and hand-computed cases."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest

from training import metrics
from training.metrics import (
    directional_accuracy,
    information_coefficients,
    max_drawdown,
    mse,
    sharpe_ratio,
    strategy,
    volatility_forecast,
)

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("seed", range(5))
def test_sharpe_and_drawdown_match_empyrical(seed):
    r = np.random.default_rng(seed).normal(0.0004, 0.01, 750)
    assert sharpe_ratio(r) == pytest.approx(empyrical.sharpe_ratio(r, risk_free=0), rel=1e-12)
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
    assert mse(pred, y) == pytest.approx(np.mean((pred - y) ** 2))


def test_strategy_by_hand():
    # two symbols, three bars; long A / short B on bar 0, flat-to-long both afterwards
    symbols = np.array(["A", "B"] * 3)
    ts = np.repeat(np.arange(3), 2)
    signal = np.array([1, -1, 1, 1, 1, 1], dtype=float)
    logret = np.log(np.array([1.10, 0.90, 1.0, 1.0, 1.02, 0.98]))
    res = strategy(signal, logret, symbols, ts, cost_bps=10)
    # bar 0: 0.5*0.10 - 0.5*(-0.10) = 0.10, traded 1.0 -> cost 0.001
    # bar 1: 0, traded |0.5-0.5| + |0.5-(-0.5)| = 1.0 -> cost 0.001
    # bar 2: 0.5*0.02 + 0.5*(-0.02) = 0, traded 0
    np.testing.assert_allclose(res.returns, [0.099, -0.001, 0.0], atol=1e-12)
    assert res.turnover == pytest.approx(2 / 3)
    flat = strategy(signal, logret, symbols, ts, cost_bps=0, long_short=False)
    np.testing.assert_allclose(flat.returns, [0.05, 0.0, 0.0], atol=1e-12)


def test_volatility_forecast_error_and_direction():
    realized = np.array([0.20, 0.10, 0.30, 0.25, np.nan])
    reference = np.full(5, 0.18)
    forecast = np.array([0.22, 0.15, 0.17, 0.30, 0.2])
    out = volatility_forecast(forecast, realized, reference)
    assert out["n"] == 4  # the bar without a realized volatility is left out
    f, r = forecast[:4], realized[:4]
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((f - r) ** 2)))
    assert out["qlike"] == pytest.approx(np.mean(np.log(f**2) + r**2 / f**2))
    # calls up, down, down, up against realized up, down, up, up: 3 of 4 right
    assert out["direction"].value == pytest.approx(3 / 4)
    # QLIKE is smallest for the true volatility
    assert volatility_forecast(r, r, reference[:4])["qlike"] < out["qlike"]


def test_overlapping_labels_widen_the_intervals():
    """Means of h-bar overlapping outcomes (a moving sum of noise, true mean 0): the i.i.d.
    interval misses 0 far more often than 5%; the overlap-aware (Newey-West) one does not."""
    h, misses = 10, {1: 0, 10: 0}
    for seed in range(200):
        noise = np.random.default_rng(seed).normal(size=1000 + h)
        overlapping = np.convolve(noise, np.ones(h), mode="valid")[:1000]
        for overlap in misses:
            ci = metrics._mean_interval(overlapping, overlap)
            misses[overlap] += not ci.low <= 0 <= ci.high
    assert misses[1] > 60 and misses[10] < 20, misses
    calls = np.random.default_rng(0).normal(size=5000)
    naive = directional_accuracy(calls, calls + 1.5)
    deflated = directional_accuracy(calls, calls + 1.5, overlap=20)
    assert deflated["accuracy"].value == naive["accuracy"].value
    assert deflated["accuracy"].high - deflated["accuracy"].low > 3 * (
        naive["accuracy"].high - naive["accuracy"].low
    )
