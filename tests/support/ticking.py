"""The QTIS code location with one schedule more, for the daemon test: an ingest of one bundled
symbol every minute (the real schedule runs the daily pipeline once a weekday evening); the test
starts it when it wants a tick."""

from dagster import Definitions, ScheduleDefinition

from orchestration import definitions
from orchestration.jobs import ingest_job

ingest_schedule = ScheduleDefinition(
    name="ingest_schedule",
    job=ingest_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    run_config={
        "ops": {"raw_bars": {"config": {"source": "bundled", "symbols": ["IBM"]}}},
        # one process: a step subprocess per asset check would load the code location again
        "execution": {"config": {"in_process": {}}},
    },
)
defs = Definitions.merge(definitions.defs, Definitions(schedules=[ingest_schedule]))
