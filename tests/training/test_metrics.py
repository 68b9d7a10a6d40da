"""The trading rule after costs and the forecast losses, by hand (the statistics they rest on
are tested in tests/quant)."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import mse, strategy, volatility_forecast


def test_mean_squared_error_leaves_missing_pairs_out():
    pred, true = np.array([1.0, 2.0, np.nan]), np.array([0.5, np.nan, 1.0])
    assert mse(pred, true) == pytest.approx(0.25)


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
