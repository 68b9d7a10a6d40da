"""The Dagster jobs (asset selections by group) and the daily schedule (the daily pull's and
the freshness watch's schedules are in ``orchestration.schedules``)."""

from __future__ import annotations

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

from orchestration.assets.features import feature_store, garch_vol
from orchestration.assets.ingest import raw_bars, raw_bars_intraday_freshness
from orchestration.assets.monitoring import drift_report
from orchestration.assets.online import model_update

# what the run queue's limits count (deploy/dagster/dagster.yaml): one run at a time trains or
# tunes, one rebuilds the dbt tables; ingestion and monitoring carry neither, so never wait on them
TRAINS = {"qtis/training": "true"}
BUILDS_FEATURES = {"qtis/features": "true"}

ingest_job = define_asset_job("ingest_job", selection=AssetSelection.assets(raw_bars))
features_job = define_asset_job(
    "features_job", selection=AssetSelection.assets(garch_vol, feature_store), tags=BUILDS_FEATURES
)
training_job = define_asset_job(
    "training_job",
    selection=AssetSelection.groups("training", "promotion", "trading"),
    tags=TRAINS,
)
tuning_job = define_asset_job("tuning_job", selection=AssetSelection.groups("tuning"), tags=TRAINS)
# fold newly labelled bars into the champion family (no full retrain), promotion pending
online_update_job = define_asset_job(
    "online_update_job", selection=AssetSelection.assets(model_update), tags=TRAINS
)
# features -> tune -> train -> ensemble -> promotion gates, for a scheduled or drift-triggered
# full retrain
retrain = define_asset_job(
    "retrain",
    selection=AssetSelection.assets(garch_vol, feature_store)
    | AssetSelection.groups("tuning", "training", "promotion", "trading"),
    tags=TRAINS | BUILDS_FEATURES,
)
# tuning is the expensive part: the daily run trains from the studies' current best trials;
# it retrains in full, so the online update (its own job) stays out
daily_pipeline = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.all() - AssetSelection.groups("tuning", "online"),
    tags=TRAINS | BUILDS_FEATURES,
)

monitoring_job = define_asset_job("monitoring_job", selection=AssetSelection.assets(drift_report))
# a session's partition of raw_bars, then the features (incremental) and the drift check
daily_pull_job = define_asset_job(
    "daily_pull_job",
    selection=AssetSelection.assets(raw_bars, garch_vol, feature_store, drift_report),
    tags=BUILDS_FEATURES,
)
# intraday: only the freshness check of market.bars (the stream writes the bars)
bars_freshness_job = define_asset_job(
    "bars_freshness_job", selection=AssetSelection.checks(raw_bars_intraday_freshness)
)

daily_schedule = ScheduleDefinition(
    name="daily_pipeline_schedule",
    job=daily_pipeline,
    cron_schedule="30 22 * * 1-5",  # after the US close, weekdays
    execution_timezone="UTC",
)

jobs = [
    ingest_job,
    features_job,
    tuning_job,
    training_job,
    retrain,
    daily_pipeline,
    online_update_job,
    monitoring_job,
    daily_pull_job,
    bars_freshness_job,
]
