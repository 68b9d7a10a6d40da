"""The drift check at the size of a universe: the champion is asked for its forecasts a bounded
batch of windows at a time (a window tensor of every training row was the 23.7 GB of a
200-symbol demo), and a universe larger than ``max_symbols`` is read as a seeded sample of that
many symbols, so the check's memory does not grow with the number of symbols."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from monitoring.drift import check_drift, current_frame, drift_data, make_baseline
from monitoring.settings import DriftSettings
from serving.predictor import Predictor
from serving.settings import ServingSettings
from training.data import TrainingData
from training.settings import TrackingSettings

WINDOW, SYMBOLS, BARS = 5, 12, 500  # 6,000 rows: more than a batch of forecasts


def synthetic(seed: int = 0) -> TrainingData:
    """Three features and one horizon per (symbol, bar), a year and a half of days each."""
    rng = np.random.default_rng(seed)
    ts = np.tile(np.arange(BARS) * np.timedelta64(1, "D") + np.datetime64("2020-01-01"), SYMBOLS)
    returns = rng.normal(0, 0.01, (SYMBOLS * BARS, 1)).astype(np.float32)
    return TrainingData(
        symbols=np.repeat([f"S{k:02d}" for k in range(SYMBOLS)], BARS),
        ts=ts.astype("datetime64[us]"),
        features=rng.normal(size=(SYMBOLS * BARS, 3)).astype(np.float32),
        returns=returns,
        volatility=np.abs(returns),
        feature_names=("a", "b", "c"),
        horizons=(1,),
    )


@dataclass
class WindowMean:
    """A model whose forecast is its window's mean of feature ``a``; it notes each batch size."""

    window: int = WINDOW
    features: tuple[str, ...] = ("a", "b", "c")
    horizons: tuple[int, ...] = (1,)
    trained_through: datetime = datetime(2021, 1, 1, tzinfo=UTC)
    name: str = "window-mean"
    version: str = "1"

    def __post_init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, windows: np.ndarray, symbols=None) -> np.ndarray:
        self.batches.append(len(windows))
        return windows[:, :, 0].mean(axis=1, keepdims=True)


def test_forecasts_are_made_a_bounded_batch_at_a_time_and_equal_one_call():
    data, model = synthetic(), WindowMean()
    s = DriftSettings(calibration_windows=20, predict_rows=1000)
    baseline = make_baseline(data, model, s)
    current = current_frame(data, model, s)
    assert max(model.batches) <= 1000 and sum(model.batches) > 1000
    # the forecasts are those of one call over every window
    rows = np.flatnonzero(data.row_in_symbol >= WINDOW - 1)
    expected = {
        (str(t), round(float(a), 5)): float(data.features[r - WINDOW + 1 : r + 1, 0].mean())
        for r, t, a in zip(rows, data.ts[rows], data.features[rows, 0], strict=True)
    }
    for frame in (baseline.reference, current):
        for t, a, p in zip(frame["ts"], frame["a"], frame["pred_h1"], strict=True):
            key = (str(np.datetime64(t.tz_localize(None), "us")), round(float(a), 5))
            assert p == pytest.approx(expected[key], abs=1e-6)


def test_a_universe_larger_than_max_symbols_is_read_as_a_seeded_sample(built):
    url, _ = built  # the bundled sample: AAPL, GOOG, IBM, MSFT
    two = drift_data(url, DriftSettings(max_symbols=2))
    assert len(set(two.symbols)) == 2
    assert set(drift_data(url, DriftSettings(max_symbols=2)).symbols) == set(two.symbols)
    assert set(drift_data(url, DriftSettings(max_symbols=2, seed=8)).symbols) <= {
        "AAPL", "GOOG", "IBM", "MSFT"
    }  # fmt: skip
    every = drift_data(url, DriftSettings(max_symbols=4))
    assert set(every.symbols) == {"AAPL", "GOOG", "IBM", "MSFT"}
    assert len(two) < len(every)


@pytest.mark.slow
def test_a_check_on_a_sample_says_so(champion, tmp_path):
    url, env, _ = champion
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tracking = TrackingSettings()
        model = Predictor(url, ServingSettings(), tracking=tracking).champion
        s = DriftSettings(max_symbols=3, explain_samples=0, calibration_windows=50)
        report = check_drift(url, s, tmp_path, model, html=False, tracking=tracking)
    assert any("3 of 4 symbols" in note for note in report.notes), report.notes
    assert report.value("data", "share_drifted") is not None
