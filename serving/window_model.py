"""What a walk-forward window is traded by: a predictor behind the serving interface and what its
training saw. Model sources (``serving.retrain_source``, ``serving.champion_source``) build one
per window; the runtime (``trading_runtime.walkforward``) only trades it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


class Skip(Exception):
    """This window is not traded, for the reason given."""


@dataclass
class WindowModel:
    """The predictor that trades a window, and what its training saw."""

    predictor: Any  # serving.predictor.Predicting
    label: str  # e.g. "qtis-xgboost v3" or "xgboost fit on w00"
    trained_through: date | None  # last training row
    label_end: date | None  # last bar a training label looked at
    training_rows: int | None = None
