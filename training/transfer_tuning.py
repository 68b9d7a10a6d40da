"""Optuna over transfer learning's fine-tune: a study of its own per fine-tuned variant
(``qtis-lstm+ft_symbol``) searching the steps per group, the learning rate and the rows a group
needs for a copy of its own (``training.studies.suggest``).

The pre-training is not searched here: each inner fold pre-trains the family's network once
(with its own study's best parameters, when it has one) and every trial fine-tunes from those
same weights, so trials differ by the fine-tune alone and cost a fine-tune each, not a training.
The inner folds and the score are ``training.tuning``'s, as for every study."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import optuna

from training.data import TrainingData
from training.families import FINE_TUNED
from training.metrics import objective_score
from training.runner import TrainConfig
from training.settings import TuningSettings
from training.studies import estimator_kwargs, suggest, with_tuned_params
from training.transfer import FineTunedModel, SharedFit, read_sectors

Fold = tuple[np.ndarray, np.ndarray, np.ndarray]  # train, validation, test rows


@dataclass(frozen=True)
class PreTraining:
    """What a fine-tune study starts from: the family's network settings, and the groups."""

    config: TrainConfig
    groups: Mapping[str, str] | None  # symbol -> sector (None: by symbol)


def pre_training(
    url: str, variant: str, data: TrainingData, base: TrainConfig, tuning: TuningSettings
) -> PreTraining:
    """``base`` for the variant's family, with that family's best trial when its study has one,
    and the sectors of ``data``'s symbols for a per-sector variant."""
    family, grouping = FINE_TUNED[variant]
    config = with_tuned_params(url, replace(base, models=(family,)), tuning)
    groups = read_sectors(url, sorted(set(data.symbols))) if grouping == "sector" else None
    return PreTraining(config, groups)


def fine_tune_objective(
    data: TrainingData,
    variant: str,
    folds: Sequence[Fold],
    start: PreTraining,
    kind: str,
    mark: Callable[[optuna.Trial], None],
) -> Callable[[optuna.Trial], float]:
    """The mean score (``kind``: training.metrics.objective_score) of the variant's fine-tuned
    forecasts over the inner folds' test rows; each trial also records the pre-trained network's
    score on the same rows (``pretrained_score``), the bar the fine-tune has to clear."""
    family, grouping = FINE_TUNED[variant]

    def scored(predictions: np.ndarray, rows: np.ndarray) -> float:
        return objective_score(predictions, data.returns[rows], data.ts[rows], kind)

    make = start.config.factories()[family]
    shared = [SharedFit(make) for _ in folds]  # one pre-training per fold, for every trial

    def objective(trial: optuna.Trial) -> float:
        mark(trial)
        settings = estimator_kwargs(variant, suggest(trial, variant), start.config.size)
        scores, pretrained = [], []
        for k, (train, validation, test) in enumerate(folds):
            model = FineTunedModel(
                shared[k], grouping, start.groups, batch_size=start.config.batch_size,
                seed=start.config.seed, **settings,
            )  # fmt: skip
            model.fit(data, train, validation)
            scores.append(scored(model.predict(data, test), test))
            pretrained.append(scored(model.pretrained_.predict_rows(data.features, test), test))
            trial.set_user_attr(f"fold_{k}_score", scores[-1])
        trial.set_user_attr("pretrained_score", float(np.mean(pretrained)))
        return float(np.mean(scores))

    return objective
