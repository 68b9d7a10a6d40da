"""The ``model_update`` asset: where it sits in the graph and jobs, and a materialization that
folds new bars into the champion (not the latest version) as a pending version."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from mlflow.tracking import MlflowClient

from orchestration.assets.online import model_update
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from training.families import FAMILIES

ROUNDS = 7


def test_model_update_sits_after_the_models_and_outside_the_daily_job():
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("model_update")).parent_keys == {
        AssetKey(["features", "training_set"]),
        *(AssetKey(f"{f}_model") for f in FAMILIES),  # every family takes online updates
    }
    job = defs.resolve_job_def("online_update_job").asset_layer.selected_asset_keys
    assert job == {AssetKey("model_update")}
    daily = defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    assert AssetKey("model_update") not in daily and AssetKey("xgboost_model") in daily


@pytest.mark.slow
def test_materialize_model_update(champion):
    url, _, _ = champion  # qtis-xgboost v1 holds @champion; family "" means the champion
    client = MlflowClient()
    latest = max(int(v.version) for v in client.search_model_versions("name='qtis-xgboost'"))
    result = materialize(
        [model_update],
        resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={"ops": {"model_update": {"config": {"rounds": ROUNDS}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("model_update")[0].metadata
    assert meta["registered_model"].value == "qtis-xgboost"
    assert meta["base_version"].value == "1"
    assert meta["new_version"].value == str(latest + 1)
    assert meta["promotion"].value == "pending" and meta["rows_used"].value > 100
    assert "holdout_mse_h1_updated" in meta and "holdout_mse_h1_base" in meta
    version = client.get_model_version("qtis-xgboost", str(latest + 1))
    assert version.tags["update_of"] == "1" and version.tags["promotion"] == "pending"
