"""Models on the current bar's features: XGBoost and the ridge / zero baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.linear_model import Ridge

from training.data import TrainingData
from training.windows import FeatureScaler


def _complete(data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """Rows whose every horizon has a label (tabular learners need full targets)."""
    return rows[~np.isnan(data.returns[rows]).any(axis=1)]


@dataclass
class XGBoostModel:
    """One multi-output booster for all horizons, early-stopped on the validation fold."""

    n_estimators: int = 600
    max_depth: int = 4
    learning_rate: float = 0.03
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 40
    seed: int = 7
    n_jobs: int = 2
    callbacks: list[Any] = field(default_factory=list)  # e.g. Optuna's pruning callback

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> XGBoostModel:
        train, validation = _complete(data, train), _complete(data, validation)
        self.model = xgb.XGBRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            early_stopping_rounds=self.early_stopping_rounds if len(validation) else None,
            callbacks=self.callbacks or None,
        )
        eval_set = (
            [(data.features[validation], data.returns[validation])] if len(validation) else None
        )
        self.model.fit(data.features[train], data.returns[train], eval_set=eval_set, verbose=False)
        self.model.set_params(callbacks=None)  # they may hold an Optuna trial: not for pickling
        self.callbacks = []
        return self

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.predict_features(data.features[rows])

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(batch, features) of raw feature values -> (batch, horizons)."""
        return np.asarray(self.model.predict(features), dtype=np.float32)

    def bundle(self) -> XGBoostModel:
        return self


@dataclass
class RidgeModel:
    """Baseline: ridge regression on the same (standardized) features of the current bar."""

    alpha: float = 10.0

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> RidgeModel:
        train = _complete(data, train)
        self.scaler = FeatureScaler().fit(data.features[train])
        self.model = Ridge(alpha=self.alpha).fit(
            self.scaler.transform(data.features[train]), data.returns[train]
        )
        return self

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.model.predict(self.scaler.transform(data.features[rows])).astype(np.float32)


@dataclass
class ZeroModel:
    """Baseline: no predictable return (a random walk); its IC is undefined, its MSE the bar."""

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> ZeroModel:
        return self

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return np.zeros((len(rows), len(data.horizons)), dtype=np.float32)


@dataclass
class HistoricalMeanModel:
    """Baseline: the training mean return per horizon; as a trading rule, buy and hold."""

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray):
        self.mean = np.nanmean(data.returns[train], axis=0).astype(np.float32)
        return self

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.mean, (len(rows), 1))
