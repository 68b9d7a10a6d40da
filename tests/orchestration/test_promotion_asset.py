"""The promotion asset: one Dagster materialization judges the registered candidates and
reports its decisions as metadata."""

from __future__ import annotations

import pytest
from dagster import materialize

from orchestration.assets.promotion import promotion as promotion_asset
from orchestration.resources import WarehouseResource
from tests.support.db import fresh_database
from tests.support.planted import SYMBOLS, register
from tests.support.promotion import LATENCY_BUDGET_MS
from training.data import load_training_data
from training.settings import TrackingSettings
from training.tracking import configure
from warehouse.db import sqlalchemy_url


@pytest.mark.slow
def test_the_promotion_asset_records_its_decisions_as_metadata(built, pg_server, tmp_path):
    url, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
        mp.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
        configure(url, TrackingSettings())
        data = load_training_data(url, SYMBOLS)
        version = register(url, data, skill=1.0, seed=4, trials=10)
        result = materialize(
            [promotion_asset],
            resources={"warehouse": WarehouseResource(database_url=url)},
            run_config={"ops": {"promotion": {"config": {"latency_budget_ms": LATENCY_BUDGET_MS}}}},
        )
    assert result.success
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("promotion")[0].metadata.items()
    }
    assert meta["champion"] == f"qtis-xgboost v{version}"
    assert meta["xgboost_decision"] == "promoted"
    assert meta["xgboost_deflated_sharpe"] > 0.95
    assert "| qtis-xgboost v" in meta["decisions"] and "deflated_sharpe" in meta["decisions"]
