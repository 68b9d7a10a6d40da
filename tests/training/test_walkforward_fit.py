"""A walk-forward window's fit sees only rows whose labels end before the window trades."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from trading_runtime.walkforward import bar_timeline, plan_windows
from training.data import load_training_data
from training.walkforward_fit import FitParams, fit_window

SYMBOLS = ["AAPL", "MSFT"]
PARAMS = FitParams(validation=0.15, min_history=250, estimators=5, max_depth=4, seed=7)


def test_a_fit_sees_only_rows_whose_labels_end_before_the_window(built):
    url, _ = built
    data = load_training_data(url, SYMBOLS)
    days = bar_timeline(url, SYMBOLS)
    window = plan_windows(days, 1, 200, 30, 20, purge=20)[0]
    model = fit_window(data, window, 20, PARAMS)
    assert model.label_end < window.test_start
    late = dataclasses.replace(window, purged=0, test_start=window.train_end + timedelta(days=1))
    tight = fit_window(data, late, 20, PARAMS)
    assert tight.label_end < late.test_start  # rows are dropped rather than leak
