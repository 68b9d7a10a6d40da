"""Hyperparameter search with Optuna on the project's Postgres, shared by any number of workers.

Choosing must never see a test bar of the evaluation that is reported later: a study only uses
the history before the first walk-forward test block (minus the embargo), and inside that span
runs its own purged walk-forward folds. The objective is the mean out-of-sample score over those
inner folds; pruning watches the validation loss epoch by epoch (boosting round by round) of
the latest inner fold, which each trial runs first. Extra workers fork from a preloaded fork
server (``training.workers``), so they start without paying the imports again.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import optuna
import torch
from optuna_integration import (
    LightGBMPruningCallback,
    PyTorchLightningPruningCallback,
    XGBoostPruningCallback,
)

from core.secrets import redact
from quant.splits import PurgedWalkForward, before_first_test
from training.data import TrainingData, load_training_data
from training.families import FAMILIES, FINE_TUNED, is_tree, lookup, study_index
from training.metrics import SCORES, objective_score
from training.runner import SIZES, TrainConfig
from training.settings import PRUNERS, TrackingSettings, TuningSettings
from training.studies import (
    TrialSeededSampler,
    estimator_kwargs,
    storage,
    storage_url,
    study_name,
    suggest,
)
from training.tracking import configure
from training.transfer_tuning import PreTraining, fine_tune_objective, pre_training
from training.windows import window_ends
from training.workers import adopt, context, environment, prestart

# each family's Optuna callback reporting its validation loss per epoch or boosting round (a
# LightGBM model reports its first horizon's booster, the one it fits first)
PRUNING_CALLBACKS: dict[str, Callable[[Any], Any]] = {
    "xgboost": lambda trial: XGBoostPruningCallback(trial, "validation_0-rmse"),
    "lightgbm": lambda trial: LightGBMPruningCallback(trial, "l2", valid_name="valid_0"),
} | {
    name: (lambda trial: PyTorchLightningPruningCallback(trial, "val_loss"))
    for name in FAMILIES
    if not is_tree(name)
}


@dataclass(frozen=True)
class TuneConfig:
    family: str = "xgboost"
    trials: int = 20
    workers: int = 1
    size: str = "small"
    window: int = 60
    epochs: int = 5
    splits: int = 2  # inner walk-forward folds inside the tuning span
    first_test: float = 0.5  # of the evaluation that is reported later: tuning stays before it
    min_history: int = 200
    xgb_estimators: int = 300
    score: str = "r2"
    pruner: str = TuningSettings.model_fields["pruner"].default  # QTIS_TUNE_PRUNER's default
    seed: int = 7
    timeout: float | None = None
    study: str | None = None
    threads: int | None = None  # per worker; default: the machine's cores shared out

    def __post_init__(self) -> None:
        if self.family not in FINE_TUNED:  # a variant's study searches its fine-tune
            lookup(self.family)  # an unknown name is refused with the list
        if self.pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}; choose from {PRUNERS}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; choose from {SCORES}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose from {sorted(SIZES)}")
        if self.trials < 1 or self.workers < 1:
            raise ValueError("--trials and --workers must be at least 1")

    @property
    def name(self) -> str:
        return self.study or study_name(self.family)

    @property
    def steps_per_fold(self) -> int:
        """Steps one fold counts (epochs or boosting rounds)."""
        return self.xgb_estimators if is_tree(self.family) else self.epochs

    @property
    def report_interval(self) -> int:
        """Steps between reports to the pruner: every epoch; about 30 times per fold for trees."""
        return max(1, self.xgb_estimators // 30) if is_tree(self.family) else 1

    def thread_count(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def data_key(self) -> dict[str, Any]:
        """What must match for trials to be comparable within one study."""
        keys = ("size", "window", "epochs", "splits", "first_test", "min_history", "score")
        return {k: getattr(self, k) for k in keys} | {"xgb_estimators": self.xgb_estimators}


# what the Dagster pipeline's studies run per materialization (`qtis tune` adds 20 trials)
PIPELINE = TuneConfig(trials=10)


class _FoldTrial:
    """The trial as the pruning callbacks see it: steps offset by the fold, so each fold's
    epochs continue one curve (recorded per trial); higher is better. Only the first fold run,
    the latest, is ``judged`` by the pruner: its early validation loss ranks candidates as
    their objective does, the earliest fold's ranks them backwards (docs/benchmarks.md).

    Only every ``interval``-th step reaches the storage (and the pruner): XGBoost's callback
    reports every boosting round, and a database round trip per round (plus the pruner reading
    every trial's curve) would cost more than pruning saves."""

    def __init__(self, trial, offset: int, interval: int = 1, judged: bool = True) -> None:
        self._trial, self._offset, self._interval = trial, offset, interval
        self._judged, self._reported = judged, False

    def report(self, value: float, step: int) -> None:
        self._reported = (step + 1) % self._interval == 0
        if self._reported:
            # the callbacks report losses, the study maximizes a score: the pruner compares
            # intermediate values in the study's direction, so report the loss negated
            self._trial.report(-value, step=step + self._offset)

    def should_prune(self) -> bool:
        return self._judged and self._reported and self._trial.should_prune()

    @property
    def study(self) -> Any:
        """The study as the callbacks see it: minimizing the loss they report (LightGBM's
        callback checks its metric's direction against the study's)."""
        return _LossStudy(self._trial.study)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


class _LossStudy:
    direction = optuna.study.StudyDirection.MINIMIZE

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


def tuning_data(url: str, config: TuneConfig) -> TrainingData:
    data = load_training_data(url)
    if not len(data):
        raise ValueError("features.training_set is empty: run `qtis features build` first")
    keep = before_first_test(data.ts, config.first_test, max(data.horizons))
    return data.take(keep)


def make_objective(
    data: TrainingData,
    config: TuneConfig,
    worker: int,
    call: str,
    start: PreTraining | None = None,  # a fine-tuned variant's (training.transfer_tuning)
) -> Callable:
    torch.set_num_threads(config.thread_count())
    horizon = max(data.horizons)
    splitter = PurgedWalkForward(n_splits=config.splits, horizon=horizon, first_test=0.5)
    valid = np.zeros(len(data), dtype=bool)
    valid[window_ends(data, config.window, config.min_history)] = True
    folds = [
        tuple(rows[valid[rows]] for rows in (f.train, f.validation, f.test))
        for f in splitter.split(data.ts)
    ]
    for k, fold in enumerate(folds):
        empty = [name for name, rows in zip(("train", "validation", "test"), fold, strict=True)
                 if not len(rows)]  # fmt: skip
        if empty:
            raise ValueError(
                f"not enough history to tune {config.family}: inner fold {k} has no "
                f"{' or '.join(empty)} rows after the {config.min_history}-bar warm-up (tuning "
                f"uses the {len(np.unique(data.ts))} bars before the reported test period); "
                "load more bars or lower min_history"
            )
    base = pre_training_config(config)

    def mark(trial: optuna.Trial) -> None:
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("call", call)

    if start is not None:
        return fine_tune_objective(data, config.family, folds, start, config.score, mark)

    def objective(trial: optuna.Trial) -> float:
        mark(trial)
        kwargs = estimator_kwargs(config.family, suggest(trial, config.family), config.size)
        if is_tree(config.family):
            kwargs["n_jobs"] = config.thread_count()
        make = TrainConfig(**(asdict(base) | {"params": {config.family: kwargs}})).factories()
        scores = []
        # the latest fold first: its curve is the one that ranks candidates (see _pruner)
        for rank, k in enumerate(reversed(range(len(folds)))):
            train, validation, test = folds[k]
            model = make[config.family]()
            fold_trial = _FoldTrial(
                trial, rank * config.steps_per_fold, config.report_interval, judged=rank == 0
            )
            model.callbacks = [PRUNING_CALLBACKS[config.family](fold_trial)]
            model.fit(data, train, validation)
            pred = model.predict(data, test)
            scores.append(objective_score(pred, data.returns[test], data.ts[test], config.score))
            trial.set_user_attr(f"fold_{k}_score", scores[-1])
        return float(np.mean(scores))

    return objective


def pre_training_config(config: TuneConfig) -> TrainConfig:
    """How a trial trains its family (a fine-tuned variant: how its network is pre-trained)."""
    family = FINE_TUNED[config.family][0] if config.family in FINE_TUNED else config.family
    return TrainConfig(
        models=(family,), size=config.size, window=config.window, epochs=config.epochs,
        xgb_estimators=config.xgb_estimators, seed=config.seed,
    )  # fmt: skip


def _pruner(config: TuneConfig):
    if config.pruner == "none":
        return optuna.pruners.NopPruner()
    # pruners judge the latest fold only (the first run, see _FoldTrial)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.steps_per_fold)
    if config.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    warmup = min(20, config.xgb_estimators // 5) if is_tree(config.family) else 1
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)


def open_study(url: str, config: TuneConfig, create: bool = True, *, tuning: TuningSettings):
    """The family's study on ``tuning``'s storage (``load_if_exists``); refuses to mix trials
    from a different data setup, which would make their scores incomparable."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        study = optuna.create_study(
            storage=storage(url, tuning),
            study_name=config.name,
            direction="maximize",
            pruner=_pruner(config),
            load_if_exists=True,
        )
    else:
        study = optuna.load_study(
            study_name=config.name, storage=storage(url, tuning), pruner=_pruner(config)
        )
    key = study.user_attrs.get("data_key")
    if key is None:
        study.set_user_attr("data_key", config.data_key())
        study.set_user_attr("family", config.family)
    elif key != config.data_key():
        raise ValueError(
            f"study {config.name!r} was run with {key}; this run uses {config.data_key()}. "
            "Use the same settings, or another study name (--study)."
        )
    return study


def _finished(study, call: str) -> int:
    """Finished trials that the ``tune`` call ``call`` ran (other machines may be adding more
    to the same study)."""
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=done)
    return sum(t.user_attrs.get("call") == call for t in trials)


def _stop_after(call: str, trials: int) -> Callable:
    """Optuna callback: stop this worker once the call's workers together finished ``trials``."""

    def stop(study, _trial) -> None:
        if _finished(study, call) >= trials:
            study.stop()

    return stop


def _log_trial(parent_run_id: str | None, config: TuneConfig) -> Callable:
    """Optuna callback: every finished trial becomes an MLflow child run of the study's run."""

    def log(study, trial) -> None:
        if parent_run_id is None:
            return

        with mlflow.start_run(
            run_name=f"{config.name} trial {trial.number}",
            parent_run_id=parent_run_id,
            nested=True,
        ):
            mlflow.log_params(trial.params)
            mlflow.set_tags(
                {
                    "optuna_study": config.name,
                    "optuna_trial": str(trial.number),
                    "state": trial.state.name,
                    "worker": str(trial.user_attrs.get("worker")),
                }
            )
            if trial.value is not None:
                mlflow.log_metric(f"objective_{config.score}", trial.value)
            for step, value in sorted(trial.intermediate_values.items()):
                mlflow.log_metric("val_loss_curve", value, step=step)

    return log


def run_worker(
    url: str,
    config: TuneConfig,
    worker: int,
    parent_run_id: str | None,
    call: str,
    on_finished: Callable[[int], None] | None = None,
    data: TrainingData | None = None,
    *,
    tracking: TrackingSettings,
    tuning: TuningSettings,
) -> None:
    """One worker of the ``tune`` call ``call``: pull trials from the shared study until the
    call's workers finished ``config.trials`` (``on_finished`` hears that count after each
    trial); trials are logged under ``parent_run_id`` in ``tracking``'s store when it is given."""
    if parent_run_id is not None:
        configure(url, tracking)
    study = open_study(url, config, create=False, tuning=tuning)
    # distinct draws per trial (whichever worker or machine runs it) and per family (else every
    # study starts with the same points)
    study.sampler = TrialSeededSampler(config.seed + 1000 * study_index(config.family))
    threads = torch.get_num_threads()
    data = data or tuning_data(url, config)
    start = None
    if config.family in FINE_TUNED:
        start = pre_training(url, config.family, data, pre_training_config(config), tuning)
    objective = make_objective(data, config, worker, call, start)
    callbacks = [_stop_after(call, config.trials), _log_trial(parent_run_id, config)]
    if on_finished:
        callbacks.append(lambda s, t: on_finished(_finished(s, call)))
    try:
        study.optimize(
            objective, n_trials=config.trials, timeout=config.timeout, callbacks=callbacks
        )
    finally:
        torch.set_num_threads(threads)  # the caller (a Dagster step, the CLI) trains next


def _helper(place: tuple[dict[str, str], str], *args: Any, **kwargs: Any) -> None:
    """A worker process of ``tune``: the caller's environment, then :func:`run_worker`."""
    adopt(*place)
    run_worker(*args, **kwargs)


@dataclass
class TuneResult:
    study: str
    storage: str
    family: str
    trials_run: int  # finished in this call
    total_trials: int  # every trial the study holds: the number promotion deflates by
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    by_worker: dict[int, int]
    seconds: float
    mlflow_run_id: str | None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tune(
    url: str,
    config: TuneConfig,
    on_progress: Callable[[int, int], None] | None = None,
    track: bool = True,
    *,
    tracking: TrackingSettings,
    tuning: TuningSettings,
) -> TuneResult:
    """Run ``config.trials`` more trials of the family's study (in ``tuning``'s store): this
    process is worker 0 and ``config.workers - 1`` more processes join it on the same study;
    ``track`` logs the study and its trials to ``tracking``'s MLflow store. Calls on other
    machines may share the study at the same time: each runs and counts its own trials."""
    stores = {"tracking": tracking, "tuning": tuning}
    if config.workers > 1:
        prestart()  # the helpers' imports overlap the data loading below
    data = tuning_data(url, config)  # fails early, here, with the clear message
    study = open_study(url, config, tuning=tuning)
    call = uuid.uuid4().hex  # marks this call's trials
    parent = None
    if track:
        configure(url, tracking)
        run = mlflow.start_run(run_name=f"tune {config.name}")
        parent = run.info.run_id
        mlflow.log_params({k: str(v) for k, v in asdict(config).items()})
        mlflow.set_tags({"optuna_study": config.name, "model_family": config.family})
        mlflow.end_run()
    started = time.perf_counter()
    place = environment()
    helpers = [
        context().Process(target=_helper, args=(place, url, config, w, parent, call), kwargs=stores)
        for w in range(1, config.workers)
    ]
    for p in helpers:
        p.start()
    progress = (lambda n: on_progress(n, config.trials)) if on_progress else None
    try:
        run_worker(url, config, 0, parent, call, progress, data, **stores)
        while any(p.is_alive() for p in helpers):
            time.sleep(0.5)
            if progress:
                progress(_finished(study, call))
    finally:
        for p in helpers:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    failed = [p.exitcode for p in helpers if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit codes {failed})")
    seconds = time.perf_counter() - started
    return _summarize(url, config, call, seconds, parent, tuning)


def _summarize(
    url, config: TuneConfig, call: str, seconds: float, parent, tuning: TuningSettings
) -> TuneResult:
    study = open_study(url, config, create=False, tuning=tuning)
    trials = study.get_trials(deepcopy=False)
    states = optuna.trial.TrialState
    ours = [
        t for t in trials
        if t.state in (states.COMPLETE, states.PRUNED) and t.user_attrs.get("call") == call
    ]  # fmt: skip
    by_worker: dict[int, int] = {}
    for t in ours:
        w = int(t.user_attrs.get("worker", -1))
        by_worker[w] = by_worker.get(w, 0) + 1
    complete = [t for t in trials if t.state == states.COMPLETE]
    best = study.best_trial if complete else None
    result = TuneResult(
        study=config.name,
        storage=redact(storage_url(url, tuning)),
        family=config.family,
        trials_run=len(ours),
        total_trials=len(trials),
        complete=len(complete),
        pruned=sum(t.state == states.PRUNED for t in trials),
        failed=sum(t.state == states.FAIL for t in trials),
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        best_trial=best.number if best else None,
        by_worker=dict(sorted(by_worker.items())),
        seconds=seconds,
        mlflow_run_id=parent,
        config=asdict(config),
    )
    if parent is not None:
        with mlflow.start_run(run_id=parent):
            mlflow.log_metrics(
                {
                    "n_trials": result.total_trials,
                    "n_complete": result.complete,
                    "n_pruned": result.pruned,
                    "tuning_seconds": seconds,
                }
                | ({"best_value": result.best_value} if best else {})
            )
            if best:
                mlflow.log_params({f"best_{k}": v for k, v in best.params.items()})
    return result
