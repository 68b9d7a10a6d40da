"""Optuna on Postgres: workers share one study, choosing never sees the reported test period,
pruning follows every fold, and the best trial feeds training."""

from __future__ import annotations

import json
import os
from collections import Counter

import mlflow
import numpy as np
import optuna
import pytest

from quant.splits import PurgedWalkForward
from tests.support.cli import qtis, qtis_together
from tests.support.db import fresh_database
from training.data import load_training_data
from training.runner import TrainConfig
from training.settings import TrackingSettings, TuningSettings
from training.studies import TrialSeededSampler, estimator_kwargs, with_tuned_params
from training.transfer import with_fine_tuning
from training.tuning import TuneConfig, open_study, tune, tuning_data
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # Optuna workers in processes, training


@pytest.fixture
def stores(pg_server, tmp_path, monkeypatch) -> dict:
    """Fresh Optuna and MLflow databases for one test (in the environment, for the CLI too):
    their settings, by the names ``tune`` takes them."""
    monkeypatch.setenv("QTIS_OPTUNA_STORAGE", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    monkeypatch.setenv("QTIS_TUNE_THREADS", "1")  # 2 OpenMP threads on 2 busy cores: ~30x slower
    return {"tracking": TrackingSettings(), "tuning": TuningSettings()}


def test_two_workers_share_one_study_and_lose_no_trial(built, stores):
    url, _ = built
    config = TuneConfig(
        family="lstm", trials=6, workers=2, size="tiny", window=20, epochs=2, min_history=50
    )
    result = tune(url, config, **stores)
    assert set(result.by_worker) == {0, 1} and all(n > 0 for n in result.by_worker.values())
    study = open_study(url, config, create=False, tuning=stores["tuning"])
    trials = study.get_trials()
    states = {t.state for t in trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert result.trials_run == len(trials) >= 6 and result.failed == 0
    assert sum(result.by_worker.values()) == len(trials)
    assert {t.user_attrs["pid"] for t in trials}.__len__() == 2  # two processes
    # every trial is a child run of the study's MLflow run; the count is recorded there
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    assert len(children) == len(trials)
    parent = mlflow.get_run(result.mlflow_run_id).data
    assert parent.metrics["n_trials"] == len(trials)
    # the best trial feeds training, with its provenance
    tuned = with_tuned_params(url, TrainConfig(models=("lstm",), size="tiny"), stores["tuning"])
    assert tuned.params["lstm"] == estimator_kwargs("lstm", study.best_params, "tiny")
    assert tuned.tuning["lstm"]["trials"] == len(trials)


def test_a_fine_tune_study_searches_the_fine_tune_and_training_reads_it(built, stores, tmp_path):
    """`qtis tune --fine-tune symbol`: a study of its own over the fine-tune's steps, lr and min
    rows, every trial starting from the same pre-trained weights (one pre-training per fold);
    `qtis train --fine-tune symbol` then fine-tunes with its best trial, counted for promotion."""
    url, _ = built
    out = tmp_path / "tune.json"
    run = qtis(
        "tune", "--model", "lstm", "--fine-tune", "symbol", "--trials", "3", "--size", "tiny",
        "--window", "20", "--epochs", "1", "--json-out", str(out), env={"QTIS_DATABASE_URL": url},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert (result["study"], result["complete"]) == ("qtis-lstm+ft_symbol", 3)
    study = optuna.load_study(
        study_name="qtis-lstm+ft_symbol", storage=os.environ["QTIS_OPTUNA_STORAGE"]
    )
    trials = study.get_trials()
    assert all(set(t.params) == {"steps", "lr", "min_rows"} for t in trials)
    assert len({t.user_attrs["pretrained_score"] for t in trials}) == 1  # one pre-training
    assert len({t.value for t in trials}) > 1  # the fine-tunes differ
    config = TrainConfig(models=("lstm", "xgboost"), size="tiny", fine_tune="symbol")
    tuned = with_tuned_params(url, config, stores["tuning"])
    assert tuned.params["lstm+ft_symbol"] == study.best_params
    assert tuned.tuning["lstm+ft_symbol"]["trials"] == 3
    _, fine_tuning = with_fine_tuning(
        tuned.factories(), ["lstm"], "symbol", tuned=tuned.params, steps=50, lr=1e-4
    )
    assert fine_tuning.settings["lstm"] == study.best_params | {"batch_size": 256}
    refused = qtis(
        "tune", "--model", "xgboost", "--fine-tune", "symbol", env={"QTIS_DATABASE_URL": url}
    )
    assert refused.returncode != 0 and "tree models and cross_asset are not" in refused.stderr


def test_tune_processes_on_two_machines_lose_no_trial_and_repeat_none(built, pg_server, tmp_path):
    """Two `qtis tune` processes started at once, each with its own QTIS_HOME (as on two
    machines, same default seed), on one Optuna database and one MLflow store: each adds the
    trials it was asked for, each trial runs once, and no parameter draw is evaluated twice."""
    url, _ = built
    optuna_url = sqlalchemy_url(fresh_database(pg_server))
    tracking = sqlalchemy_url(fresh_database(pg_server))
    shared = {
        "QTIS_DATABASE_URL": url,
        "QTIS_OPTUNA_STORAGE": optuna_url,
        "QTIS_MLFLOW_TRACKING_URI": tracking,
        "QTIS_TUNE_THREADS": "1",  # two processes on the machine's cores
    }
    args = ["tune", "--model", "xgboost", "--trials", "2", "--xgb-estimators", "20"]
    runs = [
        ([*args, "--json-out", str(tmp_path / f"m{k}.json")],
         shared | {"QTIS_HOME": str(tmp_path / f"m{k}" / ".qtis")})
        for k in (0, 1)
    ]  # fmt: skip
    for done in qtis_together(*runs, timeout=540):  # the pytest limit is 600 s
        assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"m{k}.json").read_text())[0] for k in (0, 1)]
    assert [r["trials_run"] for r in reports] == [2, 2]  # each counts its own trials only
    trials = optuna.load_study(study_name="qtis-xgboost", storage=optuna_url).get_trials()
    assert sorted(t.number for t in trials) == list(range(4))  # none lost, none run twice
    done_states = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert {t.state for t in trials} <= done_states
    assert sorted(Counter(t.user_attrs["pid"] for t in trials).values()) == [2, 2]
    draws = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(draws)) == len(draws), draws  # no parameter set evaluated twice
    mlflow.set_tracking_uri(tracking)
    logged = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.optuna_study = 'qtis-xgboost'"
    )
    trial_runs = logged["tags.optuna_trial"].dropna()
    assert sorted(int(n) for n in trial_runs) == list(range(4))  # each trial logged once


def test_workers_with_one_seed_draw_apart_and_one_process_repeats_itself():
    """Samplers with the same seed on two machines share a study: trial n draws from seed + n,
    so their trials differ, and a single process draws the same sequence every time."""

    def draws(samplers: list) -> list[float]:
        storage = optuna.storages.InMemoryStorage()
        studies = [
            optuna.create_study(storage=storage, study_name="s", sampler=s, load_if_exists=True)
            for s in samplers
        ]
        out = []
        for k in range(6):  # the machines take turns
            study = studies[k % len(studies)]
            trial = study.ask()
            out.append(trial.suggest_float("x", 0.0, 1.0))
            study.tell(trial, out[-1])
        return out

    two_machines = draws([TrialSeededSampler(7), TrialSeededSampler(7)])
    assert len(set(two_machines)) == len(two_machines)
    assert draws([TrialSeededSampler(7)]) == draws([TrialSeededSampler(7)]) == two_machines


TREE_BASES = {
    "xgboost": {"max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5.0},
    "lightgbm": {"num_leaves": 7, "subsample": 0.8, "colsample_bytree": 0.8,
                 "min_child_samples": 50},
}  # fmt: skip


@pytest.mark.parametrize("family", TREE_BASES)
def test_pruned_trials_are_recorded_as_pruned(family, built, stores):
    """Successive halving over enqueued candidates: a trial it stops ends PRUNED (not failed),
    inside the latest fold, the only one the pruner judges; the result counts it and MLflow
    logs it as pruned, while finished trials carry the curve of every fold. Each tree family's
    own pruning callback reports its validation loss (LightGBM's checks the direction)."""
    url, _ = built
    config = TuneConfig(
        family=family,
        trials=4,
        xgb_estimators=40,
        pruner="successive-halving",
        study=f"p-{family}",
        threads=1,  # one OpenMP thread: two on a busy 2-core machine run 30x slower
    )
    study = open_study(url, config, tuning=stores["tuning"])
    base = TREE_BASES[family]
    for rate in (0.3, 0.01, 0.1, 0.005):
        study.enqueue_trial(base | {"learning_rate": rate, "reg_lambda": 1.0})
    result = tune(url, config, **stores)
    states = optuna.trial.TrialState
    trials = study.get_trials()
    pruned = [t for t in trials if t.state == states.PRUNED]
    assert pruned and result.pruned == len(pruned) and result.failed == 0
    assert {t.state for t in trials} == {states.COMPLETE, states.PRUNED}
    assert all(max(t.intermediate_values) < config.steps_per_fold for t in pruned)
    done = [t for t in trials if t.state == states.COMPLETE]
    assert all(max(t.intermediate_values) >= config.steps_per_fold for t in done)
    assert all({"fold_0_score", "fold_1_score"} <= set(t.user_attrs) for t in done)
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    assert sorted(children["tags.state"]) == sorted(t.state.name for t in trials)


def test_tuning_data_ends_before_the_reported_test_period(built):
    url, _ = built
    config = TuneConfig(family="xgboost", first_test=0.5)
    full = load_training_data(url)
    horizon = max(full.horizons)
    first_test = next(iter(PurgedWalkForward(3, horizon=horizon, first_test=0.5).split(full.ts)))
    test_start = full.ts[first_test.test].min()
    times = np.unique(full.ts)
    chosen = tuning_data(url, config)
    gap = np.searchsorted(times, test_start) - np.searchsorted(times, chosen.ts.max())
    assert chosen.ts.max() < test_start and gap > horizon  # purged by the longest horizon
    assert len(chosen) > 0.4 * len(full)


def test_pruning_sees_every_fold_and_the_cli_reports(built, stores, tmp_path):
    url, _ = built
    out = tmp_path / "tune.json"
    env = {"QTIS_DATABASE_URL": url}
    done = qtis(
        "tune", "--model", "xgboost", "--trials", "3", "--xgb-estimators", "60",
        "--json-out", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())
    assert result["config"]["pruner"] == "successive-halving"  # the default, chosen in bench
    assert result["config"]["threads"] == 1  # QTIS_TUNE_THREADS, set by ``stores``
    assert result["study"] == "qtis-xgboost" and result["total_trials"] == 3
    assert result["best_value"] is not None and set(result["best_params"]) >= {"max_depth"}
    study = optuna.load_study(study_name="qtis-xgboost", storage=os.environ["QTIS_OPTUNA_STORAGE"])
    steps = [set(t.intermediate_values) for t in study.get_trials()]
    # the rounds of one fold are reported after the other's (offset by xgb_estimators)
    assert any(min(s) < 60 <= max(s) for s in steps if s)
    bad = qtis("tune", "--model", "xgboost", "--trials", "1", "--window", "30", env=env)
    assert bad.returncode != 0 and "--study" in bad.stderr  # different setup, same study
