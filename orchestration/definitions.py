"""The one Dagster code location of QTIS."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, ScheduleDefinition, define_asset_job

from orchestration.assets import raw_bars, raw_bars_checks
from orchestration.resources import WarehouseResource

ingest_job = define_asset_job("ingest_job", selection=AssetSelection.assets(raw_bars))

daily_ingest = ScheduleDefinition(
    name="daily_ingest",
    job=ingest_job,
    cron_schedule="30 22 * * 1-5",  # after the US close, weekdays
    execution_timezone="UTC",
)

defs = Definitions(
    assets=[raw_bars],
    asset_checks=raw_bars_checks,
    jobs=[ingest_job],
    schedules=[daily_ingest],
    resources={"warehouse": WarehouseResource()},
)
