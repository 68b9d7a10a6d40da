"""The per-window fit of a walk-forward backtest: an XGBoost on the window's training rows only,
never registered. The runtime plans the windows and trades them; serving wraps a fit in an
in-process predictor (``serving.retrain_source.RetrainSource``, through
``registry.retrain``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from quant.splits import WindowDates, final_split
from training.data import TrainingData
from training.models.tabular import XGBoostModel
from training.portable import Portable
from training.windows import window_ends


class NoTrainingRows(ValueError):
    """A window has no labelled training rows to fit on."""


@dataclass(frozen=True)
class FitParams:
    """How a window's model is fitted (the defaults are ``QTIS_WALKFORWARD_*``'s)."""

    validation: float  # the last share of the training rows, purged, for early stopping
    min_history: int  # a symbol's first bars left out (features warm up)
    estimators: int  # boosting rounds
    max_depth: int
    seed: int


@dataclass(frozen=True)
class WindowFit:
    """A fitted model and what its training saw."""

    model: Portable
    features: tuple[str, ...]
    horizons: tuple[int, ...]
    trained_through: date  # last training row
    label_end: date  # last bar a training label looked at
    rows: int


def _date(day: np.datetime64) -> date:
    return day.astype("datetime64[D]").item()


def fit_window(
    data: TrainingData, window: WindowDates, horizon: int, params: FitParams
) -> WindowFit:
    """An XGBoost on the window's training rows whose labels end before the window trades (the
    last ``params.validation`` share, purged, for early stopping)."""
    rows = window_ends(data, 1, params.min_history)
    days = data.ts[rows].astype("datetime64[D]")
    first, last = np.datetime64(window.train_start), np.datetime64(window.train_end)
    rows = rows[(days >= first) & (days <= last)]
    # a symbol with missing days looks further ahead in calendar terms: drop such rows too
    ends = data.label_ends(rows, horizon).astype("datetime64[D]")
    rows = rows[ends < np.datetime64(window.test_start)]
    complete = rows[~np.isnan(data.returns[rows]).any(axis=1)]
    if not len(complete):
        raise NoTrainingRows(
            f"window {window.name}: no labelled training rows from {window.train_start} to"
            f" {window.train_end} (features.training_set; min_history {params.min_history})"
        )
    split = final_split(data.ts[rows], horizon, params.validation)
    train, validation = rows[split.train], rows[split.validation]
    model = XGBoostModel(
        n_estimators=params.estimators, max_depth=params.max_depth, seed=params.seed
    ).fit(data, train, validation)
    used = np.r_[train, validation]
    used = used[~np.isnan(data.returns[used]).any(axis=1)]  # the rows the booster saw
    return WindowFit(
        Portable(model, "features", tuple(data.feature_names)),
        tuple(data.feature_names),
        tuple(data.horizons),
        _date(data.ts[used].max()),
        _date(data.label_end(used, horizon)),
        len(used),
    )
