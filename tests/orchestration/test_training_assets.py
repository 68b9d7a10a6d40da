"""Training assets in Dagster: downstream of the training set, registered in MLflow."""

import json
from pathlib import Path

import mlflow
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from orchestration.assets.training import training_assets
from orchestration.assets.tuning import tuning_assets
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from tests.support.db import fresh_database
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # materializes tuning and training


def test_training_assets_depend_on_the_training_set():
    graph = defs.resolve_asset_graph()
    for family in ("lstm", "transformer", "xgboost"):
        parents = graph.get(AssetKey(f"{family}_model")).parent_keys
        assert parents == {AssetKey(["features", "training_set"]), AssetKey(f"{family}_tuning")}
    assert graph.get(AssetKey("ensemble_model")).parent_keys == {
        AssetKey(f"{family}_model") for family in ("lstm", "transformer", "xgboost")
    }
    retrain = defs.resolve_job_def("retrain").asset_layer.selected_asset_keys
    assert {
        AssetKey("garch_vol"),
        AssetKey("xgboost_tuning"),
        AssetKey("ensemble_model"),
    } <= retrain
    daily = defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    assert AssetKey("xgboost_tuning") not in daily and AssetKey("xgboost_model") in daily


def test_materialize_tuning_then_model(built, pg_server, tmp_path, monkeypatch):
    url, _ = built
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_OPTUNA_STORAGE", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    model = next(a for a in training_assets if a.op.name == "xgboost_model")
    tuning = next(a for a in tuning_assets if a.op.name == "xgboost_tuning")
    result = materialize(
        [tuning, model],
        resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={
            "ops": {
                "xgboost_tuning": {"config": {"trials": 3, "xgb_estimators": 40}},
                "xgboost_model": {"config": {"splits": 2, "xgb_estimators": 30}},
            }
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    study = result.asset_materializations_for_node("xgboost_tuning")[0].metadata
    assert study["trials_total"].value == 3 and study["failed"].value == 0
    meta = result.asset_materializations_for_node("xgboost_model")[0].metadata
    assert meta["registered_model"].value == "qtis-xgboost" and meta["version"].value == "1"
    assert meta["tuning_trials"].value == 3  # the best trial fed the model, and is counted
    run = mlflow.get_run(meta["mlflow_run_id"].value).data
    assert run.params["model_max_depth"] == str(study["best_params"].value["max_depth"])
    report = json.loads(Path(meta["report"].value).read_text())
    assert set(report["models"]) == {"xgboost", "zero", "ridge", "buy_and_hold"}
    assert report["folds"] == 2
