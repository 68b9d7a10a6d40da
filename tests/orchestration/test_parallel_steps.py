"""Dagster's multiprocess executor runs independent QTIS assets at the same time, each in its
own process: two tuning studies of the code location's tuning job, as the daemon launches a run,
both opening fresh Optuna and MLflow stores at the same moment."""

from __future__ import annotations

import os

import optuna
import pytest
from dagster import AssetKey, DagsterEventType, execute_job, instance_for_test, reconstructable

from orchestration.definitions import defs
from tests.support.db import fresh_database
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # a step process per asset, tuning in each

STEPS = ("xgboost_tuning", "lstm_tuning")


def tuning_job():
    """The code location's tuning job; every step process rebuilds it from here."""
    return defs.resolve_job_def("tuning_job")


def test_independent_assets_run_at_once_in_their_own_processes(
    built, pg_server, tmp_path, monkeypatch
):
    url, _ = built
    optuna_url = sqlalchemy_url(fresh_database(pg_server))
    env = {  # the step processes inherit it
        "QTIS_DATABASE_URL": url,
        "QTIS_OPTUNA_STORAGE": optuna_url,
        "QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(fresh_database(pg_server)),
        "QTIS_HOME": str(tmp_path / ".qtis"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run_config = {
        "execution": {"config": {"multiprocess": {"max_concurrent": 2}}},
        "ops": {
            "xgboost_tuning": {"config": {"trials": 2, "xgb_estimators": 20}},
            "lstm_tuning": {"config": {"trials": 2, "size": "tiny", "epochs": 1, "window": 20}},
        },
    }
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = execute_job(
            reconstructable(tuning_job),
            instance,
            run_config=run_config,
            asset_selection=[AssetKey(step) for step in STEPS],
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        events = [e for e in instance.all_logs(result.run_id) if e.is_dagster_event]
    position = {kind: {} for kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)}
    pids = {}
    for i, entry in enumerate(events):  # in the order the run's event log recorded them
        if entry.dagster_event_type in position:
            position[entry.dagster_event_type][entry.step_key] = i
        if entry.dagster_event_type == DagsterEventType.STEP_START:
            pids[entry.step_key] = entry.dagster_event.pid
    starts, ends = position[DagsterEventType.STEP_START], position[DagsterEventType.STEP_SUCCESS]
    assert set(starts) == set(ends) == set(STEPS)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    # overlapped: each step started before the other finished
    assert max(starts.values()) < min(ends.values()), (starts, ends)
    for step in STEPS:
        study = optuna.load_study(study_name=f"qtis-{step.split('_')[0]}", storage=optuna_url)
        assert len(study.get_trials()) == 2
