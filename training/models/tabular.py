"""Models on the current bar's features: the tree families (XGBoost, LightGBM) and the ridge /
zero / historical-mean baselines."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.linear_model import Ridge

from training.data import TrainingData
from training.windows import FeatureScaler


def _complete(data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """Rows whose every horizon has a label (tabular learners need full targets)."""
    return rows[~np.isnan(data.returns[rows]).any(axis=1)]


class TreeModel(ABC):
    """What the tree families share: they read the last bar's raw features (no scaling), are
    their own bundle, save to their library's native files, explain with TreeSHAP and take
    online updates by boosting more rounds (their Optuna pruning callbacks: training.tuning)."""

    family: ClassVar[str]
    callbacks: list[Any]

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.predict_features(data.features[rows])

    @abstractmethod
    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(batch, features) of raw feature values -> (batch, horizons)."""

    def bundle(self) -> TreeModel:
        return self

    def params(self) -> dict[str, Any]:
        """The constructor arguments (what the portable manifest records)."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return {f.name: getattr(self, f.name) for f in fields if f.name != "callbacks"}

    @abstractmethod
    def explainable(self) -> list[Any]:
        """The fitted models ``shap.TreeExplainer`` reads, whose outputs are the horizons in
        order (one multi-output model, or one per horizon)."""

    @abstractmethod
    def save(self, directory: Path) -> dict[str, Any]:
        """Write the boosters under ``directory``; returns the manifest entries naming them."""

    @classmethod
    @abstractmethod
    def load(cls, manifest: dict[str, Any], directory: Path) -> TreeModel:
        """The model :meth:`save` wrote (its manifest entries and the directory)."""

    @abstractmethod
    def boosted(
        self, data: TrainingData, rows: np.ndarray, rounds: int
    ) -> tuple[TreeModel, dict[str, Any]]:
        """(a copy boosted ``rounds`` more rounds on ``rows`` from the trees it predicts with,
        details): the online update."""


@dataclass
class XGBoostModel(TreeModel):
    """One multi-output booster for all horizons, early-stopped on the validation fold."""

    family: ClassVar[str] = "xgboost"

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

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(features), dtype=np.float32)

    def explainable(self) -> list[Any]:
        return [self.model]

    def save(self, directory: Path) -> dict[str, Any]:
        self.model.save_model(directory / "booster.ubj")
        return {"booster": "booster.ubj"}

    @classmethod
    def load(cls, manifest: dict[str, Any], directory: Path) -> XGBoostModel:
        model = cls(**manifest["params"])
        model.model = xgb.XGBRegressor()
        model.model.load_model(directory / manifest["booster"])
        return model

    def boosted(
        self, data: TrainingData, rows: np.ndarray, rounds: int
    ) -> tuple[XGBoostModel, dict[str, Any]]:
        # an early-stopped booster holds more trees than its best iteration uses
        booster = self.model.get_booster()
        try:
            used = int(self.model.best_iteration) + 1
        except AttributeError:  # trained without early stopping: every round counts
            used = booster.num_boosted_rounds()
        params = self.model.get_params() | {
            "n_estimators": rounds,
            "early_stopping_rounds": None,  # no validation rows: the holdout only reports
            "callbacks": None,
        }
        model = xgb.XGBRegressor(**params)
        model.fit(data.features[rows], data.returns[rows], xgb_model=booster[:used], verbose=False)
        updated = dataclasses.replace(self, callbacks=[])
        updated.model = model
        after = model.get_booster().num_boosted_rounds()
        return updated, {"rounds_before": used, "rounds_added": after - used, "rounds_after": after}


@dataclass
class LightGBMModel(TreeModel):
    """One LightGBM booster per horizon (LightGBM has no multi-output regression), each
    early-stopped on its own validation labels; leaf-wise growth bounded by ``num_leaves``."""

    family: ClassVar[str] = "lightgbm"
    n_estimators: int = 600
    num_leaves: int = 15
    learning_rate: float = 0.03
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_samples: int = 50
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 40
    seed: int = 7
    n_jobs: int = 2
    # Optuna's pruning callback: it follows the first horizon's booster, which is fitted first
    callbacks: list[Any] = field(default_factory=list)

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "min_data_in_leaf": self.min_child_samples,
            "lambda_l2": self.reg_lambda,
            "seed": self.seed,
            "num_threads": self.n_jobs,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> LightGBMModel:
        self.boosters: list[lgb.Booster] = []
        for h in range(data.returns.shape[1]):
            fit_rows = train[~np.isnan(data.returns[train, h])]
            val_rows = validation[~np.isnan(data.returns[validation, h])]
            dataset = lgb.Dataset(data.features[fit_rows], data.returns[fit_rows, h])
            callbacks = list(self.callbacks) if h == 0 else []
            valid = []
            if len(val_rows):
                valid = [dataset.create_valid(data.features[val_rows], data.returns[val_rows, h])]
                if self.early_stopping_rounds:
                    callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
            booster = lgb.train(
                self._params(), dataset, num_boost_round=self.n_estimators, valid_sets=valid,
                callbacks=callbacks,
            )  # fmt: skip
            self.boosters.append(booster)
        self.callbacks = []  # they may hold an Optuna trial: not for saving
        return self

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        return np.column_stack(
            [b.predict(x, num_iteration=b.best_iteration or None) for b in self.boosters]
        ).astype(np.float32)

    def explainable(self) -> list[Any]:
        return list(self.boosters)

    def save(self, directory: Path) -> dict[str, Any]:
        names = []
        for h, booster in enumerate(self.boosters):
            names.append(f"booster_{h}.txt")  # LightGBM's text format; best iteration only
            booster.save_model(directory / names[-1], num_iteration=booster.best_iteration or None)
        return {"boosters": names}

    @classmethod
    def load(cls, manifest: dict[str, Any], directory: Path) -> LightGBMModel:
        model = cls(**manifest["params"])
        model.boosters = [lgb.Booster(model_file=directory / n) for n in manifest["boosters"]]
        return model

    def boosted(
        self, data: TrainingData, rows: np.ndarray, rounds: int
    ) -> tuple[LightGBMModel, dict[str, Any]]:
        updated = dataclasses.replace(self, callbacks=[])
        updated.boosters = []
        before = after = 0
        for h, booster in enumerate(self.boosters):
            used = booster.best_iteration or booster.current_iteration()
            start = lgb.Booster(model_str=booster.model_to_string(num_iteration=used))
            fit_rows = rows[~np.isnan(data.returns[rows, h])]
            dataset = lgb.Dataset(data.features[fit_rows], data.returns[fit_rows, h])
            more = lgb.train(self._params(), dataset, num_boost_round=rounds, init_model=start)
            updated.boosters.append(more)
            before, after = before + used, after + more.current_iteration()
        n = len(self.boosters)
        return updated, {
            "rounds_before": before // n, "rounds_added": (after - before) // n,
            "rounds_after": after // n,
        }  # fmt: skip


TREE_MODELS: dict[str, type[TreeModel]] = {m.family: m for m in (XGBoostModel, LightGBMModel)}


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
