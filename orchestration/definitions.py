"""The one Dagster code location of QTIS. Loading it refuses unknown ``QTIS_`` variables first,
with the message the CLI gives."""

from __future__ import annotations

from dagster import Definitions

from core.settings import check_environment
from orchestration.assets.features import feature_store, garch_vol
from orchestration.assets.ingest import raw_bars, raw_bars_checks, raw_bars_intraday_freshness
from orchestration.assets.monitoring import drift_report
from orchestration.assets.online import model_update
from orchestration.assets.promotion import promotion
from orchestration.assets.trading import reference_backtests
from orchestration.assets.training import ensemble_model, training_assets
from orchestration.assets.tuning import tuning_assets
from orchestration.jobs import daily_schedule, jobs, retrain
from orchestration.resources import WarehouseResource, dbt_resource
from orchestration.schedules import schedules
from orchestration.sensors import drift_sensor_for, failed_run_alerts, shadow_sensor

check_environment()
defs = Definitions(
    assets=[
        raw_bars,
        garch_vol,
        feature_store,
        *tuning_assets,
        *training_assets,
        ensemble_model,
        promotion,
        reference_backtests,
        model_update,
        drift_report,
    ],
    asset_checks=[*raw_bars_checks, raw_bars_intraday_freshness],
    jobs=jobs,
    schedules=[daily_schedule, *schedules],
    sensors=[drift_sensor_for(retrain), shadow_sensor, failed_run_alerts],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
)
