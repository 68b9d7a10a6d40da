"""A stand-in model of known skill, registered the way `qtis train` registers a model: what the
promotion gates are tested against."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quant.splits import PurgedWalkForward
from training import tracking
from training.data import TrainingData
from training.evaluate import evaluate
from training.models.tabular import HistoricalMeanModel, RidgeModel, XGBoostModel, ZeroModel
from training.runner import TrainConfig

SYMBOLS = ["AAPL", "IBM", "MSFT"]


@dataclass
class Planted:
    """A stand-in model of known skill: its test predictions are ``skill`` x the true forward
    returns plus noise of the returns' own scale. skill 0 = noise."""

    skill: float
    seed: int = 0

    def fit(self, data, train, validation) -> Planted:
        return self

    def predict(self, data, rows: np.ndarray) -> np.ndarray:
        true = np.nan_to_num(data.returns[rows].astype(np.float64))
        noise = np.random.default_rng(self.seed + len(rows)).normal(size=true.shape)
        return (self.skill * true + noise * true.std(axis=0)).astype(np.float32)


def live_model(data: TrainingData) -> XGBoostModel:
    """What a planted version serves: a one-tree XGBoost on ``data``'s feature columns (the
    gates judge the planted walk-forward record; serving needs a real model of the columns)."""
    rows = np.arange(len(data))
    return XGBoostModel(n_estimators=1, max_depth=1, n_jobs=1).fit(data, rows, rows[:0])


def with_features(data: TrainingData, names: Sequence[str]) -> TrainingData:
    """``data`` with only the feature columns ``names``, in that order."""
    index = [data.feature_names.index(n) for n in names]
    return dataclasses.replace(data, features=data.features[:, index], feature_names=tuple(names))


def register(
    url: str, data: TrainingData, skill: float, seed: int = 0, trials: int = 1,
    family: str = "xgboost",
) -> str:  # fmt: skip
    """Evaluate the planted model walk-forward next to the real baselines and log it the way
    `qtis train` does, as ``family``'s registered model; returns the version."""
    models = {
        family: lambda: Planted(skill, seed),
        "zero": ZeroModel,
        "ridge": RidgeModel,
        "buy_and_hold": HistoricalMeanModel,
    }
    splitter = PurgedWalkForward(n_splits=3, horizon=max(data.horizons), first_test=0.5)
    evaluation = evaluate(data, models, splitter, window=1, min_history=200)
    config = TrainConfig(models=(family,), tuning={family: {"study": "planted", "trials": trials}})
    info = tracking.log_family(family, evaluation, config, live_model(data), data.features[-2:])
    return str(info["version"])
