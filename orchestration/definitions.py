"""The one Dagster code location of QTIS."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, ScheduleDefinition, define_asset_job

from orchestration.assets import raw_bars, raw_bars_checks
from orchestration.features import dbt_resource, feature_store, garch_vol
from orchestration.monitoring_assets import drift_report
from orchestration.online_assets import model_update
from orchestration.promotion_assets import promotion
from orchestration.resources import WarehouseResource
from orchestration.sensors import drift_sensor_for, failed_run_alerts, shadow_sensor
from orchestration.trading_assets import reference_backtests
from orchestration.training_assets import ensemble_model, training_assets
from orchestration.tuning_assets import tuning_assets

ingest_job = define_asset_job("ingest_job", selection=AssetSelection.assets(raw_bars))
features_job = define_asset_job(
    "features_job", selection=AssetSelection.assets(garch_vol, feature_store)
)
training_job = define_asset_job(
    "training_job", selection=AssetSelection.groups("training", "promotion", "trading")
)
tuning_job = define_asset_job("tuning_job", selection=AssetSelection.groups("tuning"))
# fold newly labelled bars into the champion family (no full retrain), promotion pending
online_update_job = define_asset_job(
    "online_update_job", selection=AssetSelection.assets(model_update)
)
# features -> tune -> train -> ensemble -> promotion gates, for a scheduled or drift-triggered
# full retrain
retrain = define_asset_job(
    "retrain",
    selection=AssetSelection.assets(garch_vol, feature_store)
    | AssetSelection.groups("tuning", "training", "promotion", "trading"),
)
# tuning is the expensive part: the daily run trains from the studies' current best trials;
# it retrains in full, so the online update (its own job) stays out
daily_pipeline = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.all() - AssetSelection.groups("tuning", "online"),
)

monitoring_job = define_asset_job("monitoring_job", selection=AssetSelection.assets(drift_report))

daily_schedule = ScheduleDefinition(
    name="daily_pipeline_schedule",
    job=daily_pipeline,
    cron_schedule="30 22 * * 1-5",  # after the US close, weekdays
    execution_timezone="UTC",
)

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
    asset_checks=raw_bars_checks,
    jobs=[
        ingest_job,
        features_job,
        tuning_job,
        training_job,
        retrain,
        daily_pipeline,
        online_update_job,
        monitoring_job,
    ],
    schedules=[daily_schedule],
    sensors=[drift_sensor_for(retrain), shadow_sensor, failed_run_alerts],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
)
