"""Training assets in Dagster: downstream of the training set, registered in MLflow."""

import json
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from orchestration.training_assets import training_assets
from tests.conftest import _fresh_database
from warehouse.db import sqlalchemy_url


def test_training_assets_depend_on_the_training_set():
    graph = defs.resolve_asset_graph()
    for family in ("lstm", "transformer", "xgboost"):
        parents = graph.get(AssetKey(f"{family}_model")).parent_keys
        assert parents == {AssetKey(["features", "training_set"])}
    assert defs.resolve_job_def("training_job") is not None


def test_materialize_a_model_asset(built, pg_server, tmp_path, monkeypatch):
    url, _ = built
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(_fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    asset = next(a for a in training_assets if a.op.name == "xgboost_model")
    result = materialize(
        [asset],
        resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={"ops": {"xgboost_model": {"config": {"splits": 2, "xgb_estimators": 30}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("xgboost_model")[0].metadata
    assert meta["registered_model"].value == "qtis-xgboost" and meta["version"].value == "1"
    report = json.loads(Path(meta["report"].value).read_text())
    assert set(report["models"]) == {"xgboost", "zero", "ridge", "buy_and_hold"}
    assert report["folds"] == 2
