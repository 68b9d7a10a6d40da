"""A stand-in model of known skill, registered the way `qtis train` registers a model: what the
promotion gates are tested against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.splits import PurgedWalkForward
from training import tracking
from training.evaluate import evaluate
from training.models.tabular import HistoricalMeanModel, RidgeModel, ZeroModel
from training.runner import TrainConfig

SYMBOLS = ["AAPL", "IBM", "MSFT"]


@dataclass
class Planted:
    """A stand-in model of known skill: its test predictions are ``skill`` x the true forward
    returns plus noise of the returns' own scale; live, it forecasts zero. skill 0 = noise."""

    skill: float
    seed: int = 0

    def fit(self, data, train, validation) -> Planted:
        return self

    def predict(self, data, rows: np.ndarray) -> np.ndarray:
        true = np.nan_to_num(data.returns[rows].astype(np.float64))
        noise = np.random.default_rng(self.seed + len(rows)).normal(size=true.shape)
        return (self.skill * true + noise * true.std(axis=0)).astype(np.float32)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        return np.zeros((len(features), 5), dtype=np.float32)


def register(url: str, data, skill: float, seed: int = 0, trials: int = 1) -> str:
    """Evaluate the planted model walk-forward next to the real baselines and log it the way
    `qtis train` does; returns the qtis-xgboost version."""
    models = {
        "xgboost": lambda: Planted(skill, seed),
        "zero": ZeroModel,
        "ridge": RidgeModel,
        "buy_and_hold": HistoricalMeanModel,
    }
    splitter = PurgedWalkForward(n_splits=3, horizon=max(data.horizons), first_test=0.5)
    evaluation = evaluate(data, models, splitter, window=1, min_history=200)
    config = TrainConfig(
        models=("xgboost",), tuning={"xgboost": {"study": "planted", "trials": trials}}
    )
    info = tracking.log_family(
        "xgboost", evaluation, config, Planted(skill, seed), data.features[-2:]
    )
    return str(info["version"])
