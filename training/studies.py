"""Optuna studies: where they live (the project's Postgres), what they search, and the best
trial that `qtis train` and the training assets start from. Running a search is
``training.tuning``. The entry point builds the :class:`TuningSettings` and passes them down."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from training.families import FINE_TUNED, fine_tuned_name, is_tree, lookup
from training.models.networks import network_config
from training.runner import SIZES, TrainConfig
from training.settings import TuningSettings
from warehouse.db import companion_database, exclusive


def storage_url(url: str, settings: TuningSettings) -> str:
    """QTIS_TUNE_STORAGE, or a database beside the warehouse."""
    if settings.storage:
        return settings.storage
    return companion_database(url, settings.database, "Optuna", "QTIS_TUNE_STORAGE")


def storage(url: str, settings: TuningSettings):
    """RDB storage with heartbeats: a trial whose worker died is marked failed and retried once,
    so a crashed worker loses no trial. Opening it creates its tables the first time, one
    process at a time (workers on other machines may be opening it at the same moment)."""
    location = storage_url(url, settings)
    with warnings.catch_warnings(), exclusive(location, "qtis_optuna_store"):
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RDBStorage(
            location,
            heartbeat_interval=15,
            grace_period=60,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            engine_kwargs={"pool_pre_ping": True},
        )


class TrialSeededSampler(BaseSampler):
    """TPE whose random draws for trial ``n`` come from ``seed + n`` alone. Trial numbers are
    handed out by the storage, unique across every process of a study, so workers on several
    machines started with the same seed never draw the same parameters, and one process still
    repeats its search exactly."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tpe = TPESampler(seed=seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe = TPESampler(seed=self.seed + trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> Any:
        return self._tpe.sample_independent(study, trial, name, distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)


def study_name(family: str) -> str:
    return f"qtis-{family}"


def suggest(trial, family: str) -> dict[str, Any]:
    """The search space of each family (raw Optuna parameters); a fine-tuned variant's is its
    fine-tune's (training.transfer): steps per group, learning rate, and the rows a group needs
    for a copy of its own."""
    if family in FINE_TUNED:
        return {
            "steps": trial.suggest_int("steps", 5, 400, log=True),
            "lr": trial.suggest_float("lr", 1e-5, 1e-3, log=True),
            "min_rows": trial.suggest_categorical("min_rows", [64, 128, 256, 512]),
        }
    if family == "lightgbm":
        return {
            "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 500, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        }
    if family == "xgboost":
        return {
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        }
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "width": trial.suggest_categorical("width", [0.5, 1.0, 2.0]),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
    }


def estimator_kwargs(family: str, params: dict[str, Any], size: str) -> dict[str, Any]:
    """Optuna parameters -> arguments of the family's estimator (``TrainConfig.params``); widths
    scale the chosen size preset."""
    if is_tree(family) or family in FINE_TUNED:
        return dict(params)
    config = network_config(family, SIZES[size][family]).widened(float(params["width"]))
    config["dropout"] = float(params["dropout"])
    return {
        "lr": float(params["lr"]),
        "weight_decay": float(params["weight_decay"]),
        "batch_size": int(params["batch_size"]),
        "config": config,
    }


def tuned_params(
    url: str, family: str, size: str, study: str | None = None, *, tuning: TuningSettings
):
    """(estimator kwargs, provenance) of the best trial of the family's study (in ``tuning``'s
    store), or None when no study has a completed trial: what `qtis train` and the training
    assets start from."""
    name = study or study_name(family)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        found = optuna.load_study(study_name=name, storage=storage_url(url, tuning))
    except (KeyError, SQLAlchemyError):
        return None
    complete = found.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    best = found.best_trial
    provenance = {
        "study": name,
        "trials": len(found.get_trials(deepcopy=False)),
        "best_trial": best.number,
        "best_value": best.value,
        "score": found.user_attrs.get("data_key", {}).get("score"),
    }
    return estimator_kwargs(family, best.params, size), provenance


def with_tuned_params(url: str, config: TrainConfig, tuning: TuningSettings) -> TrainConfig:
    """``config`` with each family's best tuned parameters (when a study in ``tuning``'s store
    has them)."""
    params, provenance = dict(config.params), dict(config.tuning)
    variants = [  # with fine-tuning: its own study's best steps, lr and min_rows too
        fine_tuned_name(family, config.fine_tune)
        for family in config.models
        if config.fine_tune and lookup(family).fine_tunable
    ]
    for family in (*config.models, *variants):
        found = tuned_params(url, family, config.size, tuning=tuning)
        if found:
            best, provenance[family] = found
            given = dict(params.get(family, {}))  # explicit arguments win over the study's
            config_part = {**best.get("config", {}), **given.pop("config", {})}
            params[family] = best | given | ({"config": config_part} if config_part else {})
    return TrainConfig(**(asdict(config) | {"params": params, "tuning": provenance}))
