"""The daily pull after each XNYS session's close, and the intraday freshness watch.

``daily_pull_schedule`` ticks at the ``PULL_TICKS`` (New York) on weekdays and runs only the
tick that follows the day's close (``orchestration.sessions.pull_session``): one run per
session, early closes included, none on holidays. It asks for that session's partition of
``raw_bars`` from ``QTIS_DAGSTER_PULL_SOURCE``; the job then builds the features incrementally
and checks drift. Intraday the stream writes bars itself: ``bars_freshness_schedule`` only
runs the freshness check every 5 minutes of the trading day."""

from __future__ import annotations

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, SkipReason, schedule

from orchestration.jobs import bars_freshness_job, daily_pull_job
from orchestration.sessions import PULL_TICKS, pull_session
from orchestration.settings import DagsterSettings

TIMEZONE = "America/New_York"


@schedule(
    name="daily_pull_schedule",
    job=daily_pull_job,
    cron_schedule=[f"{minute} {hour} * * 1-5" for hour, minute in PULL_TICKS],
    execution_timezone=TIMEZONE,
)
def daily_pull_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """The pull of the session that closed before this tick."""
    at = context.scheduled_execution_time
    session = pull_session(at)
    if session is None:
        return SkipReason(f"{at:%Y-%m-%d %H:%M %Z}: not the tick after an XNYS close")
    settings = DagsterSettings()
    config = {"source": settings.pull_source, "symbols": settings.pull_symbols}
    return RunRequest(
        partition_key=session.isoformat(),
        run_config={"ops": {"raw_bars": {"config": config}}},
    )


bars_freshness_schedule = ScheduleDefinition(
    name="bars_freshness_schedule",
    job=bars_freshness_job,
    cron_schedule="*/5 9-16 * * 1-5",  # the check itself knows holidays and the hours
    execution_timezone=TIMEZONE,
)

schedules = [daily_pull_schedule, bars_freshness_schedule]
