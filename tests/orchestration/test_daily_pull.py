"""The daily pull: a schedule that ticks once after each XNYS session's close (early closes
included, holidays skipped), requesting that session's partition of ``raw_bars``; the
partition loads only its day; the intraday freshness check judges market.bars only while the
market is open."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from dagster import DagsterInstance, build_schedule_context, materialize

from orchestration.assets.ingest import raw_bars, raw_bars_checks
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from orchestration.schedules import daily_pull_schedule
from orchestration.sessions import PULL_TICKS, stale_in_session

NEW_YORK = ZoneInfo("America/New_York")


def ticks(first: date, last: date) -> list[tuple[str, str]]:
    """(tick in New York, partition requested) of every cron tick of the schedule that runs."""
    repository = defs.get_repository_def()
    out = []
    day = first
    while day <= last:
        for hour, minute in PULL_TICKS:
            at = datetime.combine(day, time(hour, minute), NEW_YORK)
            if at.weekday() >= 5:
                continue
            with build_schedule_context(
                instance=DagsterInstance.ephemeral(),
                repository_def=repository,
                scheduled_execution_time=at,
            ) as context:
                data = daily_pull_schedule.evaluate_tick(context)
            out += [(f"{at:%m-%d %H:%M}", r.partition_key) for r in data.run_requests or []]
        day += timedelta(days=1)
    return out


def test_the_pull_ticks_after_each_close_around_thanksgiving_and_christmas():
    """Thanksgiving (Thu 26 Nov 2026) has no session; the Friday after and Christmas Eve close
    at 13:00; Christmas Day has none."""
    assert daily_pull_schedule.execution_timezone == "America/New_York"
    assert ticks(date(2026, 11, 25), date(2026, 11, 30)) == [
        ("11-25 16:30", "2026-11-25"),
        ("11-27 13:30", "2026-11-27"),
        ("11-30 16:30", "2026-11-30"),
    ]
    assert ticks(date(2026, 12, 23), date(2026, 12, 28)) == [
        ("12-23 16:30", "2026-12-23"),
        ("12-24 13:30", "2026-12-24"),
        ("12-28 16:30", "2026-12-28"),
    ]


def test_one_partition_loads_one_day_and_the_unpartitioned_run_loads_all(db_url, tmp_path):
    path = tmp_path / "bars.csv"
    rows = ["symbol,date,open,high,low,close,volume"]
    for day in ("2020-01-02", "2020-01-03", "2020-01-06"):
        rows += [f"{s},{day},10,11,9,10.5,100" for s in ("AAA", "BBB")]
    path.write_text("\n".join(rows) + "\n")
    config = {"ops": {"raw_bars": {"config": {"source": "csv", "path": str(path)}}}}
    resources = {"warehouse": WarehouseResource(database_url=db_url)}
    result = materialize(
        [raw_bars, *raw_bars_checks], resources=resources, run_config=config,
        partition_key="2020-01-03", instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    meta = result.asset_materializations_for_node("raw_bars")[0].metadata
    assert meta["loaded"].value == 2
    with psycopg.connect(db_url) as conn:
        days = conn.execute("select distinct ts::date from market.bars").fetchall()
    assert days == [(date(2020, 1, 3),)]
    whole = materialize([raw_bars], resources=resources, run_config=config,
                        instance=DagsterInstance.ephemeral())  # fmt: skip
    assert whole.asset_materializations_for_node("raw_bars")[0].metadata["loaded"].value == 6


def test_the_daily_pull_job_is_the_partition_then_features_then_drift():
    job = defs.resolve_job_def("daily_pull_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"raw_bars", "garch_vol", "features/bar_features", "drift_report"} <= keys
    assert not {"promotion", "xgboost_model"} & keys
    assert defs.resolve_job_def("bars_freshness_job") is not None


def test_market_bars_are_stale_only_while_the_market_is_open():
    open_ = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York
    closed = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)  # Saturday
    holiday = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)
    old = datetime(2026, 12, 4, 14, 50, tzinfo=UTC)
    assert stale_in_session(old, open_, 5) == "the newest bar is 10.0 minutes old (limit 5)"
    assert stale_in_session(open_ - timedelta(minutes=2), open_, 5) is None
    assert stale_in_session(None, open_, 5) == "market.bars is empty"
    assert stale_in_session(old, closed, 5) is None
    assert stale_in_session(old, holiday, 5) is None
