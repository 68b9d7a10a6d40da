"""Dagster as a service: the real code server and ``dagster-daemon`` on the instance that
``qtis ui`` uses with an external database (runs, events and schedules in Postgres, the run
queue and its limits, run monitoring), as a deployment runs them.

The drift sensor, switched on with ``dagster sensor start``, sees a drift record and the daemon
launches the ``retrain`` job; that run is held at its first step (the test locks the GARCH table)
so that it stays in progress: a second training run waits in the queue behind it, while a
schedule tick launches an ingest that succeeds meanwhile. Run monitoring cancels the retrain
once it is past the maximum runtime the test gives it; the queue then lets the second training
run go. No full training runs: both training runs are cancelled."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from monitoring.drift_results import save
from orchestration.instance import dagster_home
from tests.support.cli import start_group, stop_group
from tests.support.db import drop_database
from tests.support.drift import report
from tests.support.service import free_port
from warehouse.db import with_database
from warehouse.settings import WarehouseSettings

pytestmark = pytest.mark.slow  # a code server, the daemon and three run workers

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# bounds for a loaded 2-core machine: loading the code location takes 15 s when idle
LOAD_S, TICK_S = 300, 300
BY_SENSOR = {"dagster/sensor_name": "drift_sensor"}
BY_SCHEDULE = {"dagster/schedule_name": "ingest_schedule"}  # tests/support/ticking.py
EXPORTED = ("DAGSTER_HOME", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST",
            "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "PGHOST")  # fmt: skip


@dataclass
class Service:
    url: str
    workspace: Path
    instance: DagsterInstance
    logs: list[Path]

    def dagster(self, *args: str) -> subprocess.CompletedProcess:
        """The ``dagster`` command line against the service's workspace and instance."""
        command = [str(BIN / "dagster"), *args, "-w", str(self.workspace)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=LOAD_S, cwd=REPO)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def wait(self, what: str, found: Callable[[], DagsterRun | None], seconds: float) -> DagsterRun:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run = found()
            if run is not None:
                return run
            time.sleep(1)
        runs = [(r.job_name, r.status.value, r.run_id[:8]) for r in self.instance.get_runs()]
        tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)
        pytest.fail(f"no {what} within {seconds:.0f} s; runs {runs}\n{tails}")

    def run(
        self, job: str, status: DagsterRunStatus | None, tags: dict[str, str] | None = None
    ) -> DagsterRun | None:
        statuses = [status] if status else []
        runs = self.instance.get_runs(RunsFilter(job_name=job, statuses=statuses, tags=tags or {}))
        return runs[0] if runs else None

    def status(self, run: DagsterRun) -> DagsterRunStatus:
        return self.instance.get_run_by_id(run.run_id).status

    def left_queue(self, run_id: str) -> DagsterRun | None:
        run = self.instance.get_run_by_id(run_id)
        return None if run.status == DagsterRunStatus.QUEUED else run

    def finish(self, run: DagsterRun) -> None:
        """Cancel ``run`` once its worker is up (unless it ended first); wait until it ended."""
        self.wait(f"worker of {run.job_name}", lambda: self._started_or_ended(run), LOAD_S)
        if not self.instance.get_run_by_id(run.run_id).is_finished:
            self.instance.run_coordinator.cancel_run(run.run_id)
        self.finished(run)

    def finished(self, run: DagsterRun) -> DagsterRun:
        return self.wait(f"end of {run.job_name}", lambda: self._ended(run), LOAD_S)

    def _started_or_ended(self, run: DagsterRun) -> DagsterRun | None:
        now = self.instance.get_run_by_id(run.run_id)
        return now if now.status == DagsterRunStatus.STARTED or now.is_finished else None

    def _ended(self, run: DagsterRun) -> DagsterRun | None:
        now = self.instance.get_run_by_id(run.run_id)
        return now if now.is_finished else None


def _wait_for_line(process: subprocess.Popen, log: Path, line: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while line not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {line!r} in {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture
def service(market, pg_server, tmp_path, monkeypatch) -> Iterator[Service]:
    """A code server for the QTIS code location (plus an ingest every minute) and the daemon,
    on the service instance over ``market``; stopped, their database dropped, afterwards."""
    for key in EXPORTED:
        monkeypatch.delenv(key, raising=False)
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis"),
           "QTIS_DAGSTER_DATABASE": database,
           "QTIS_ALERT_LOG_FILE": str(tmp_path / "alerts.jsonl")}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dagster_home(WarehouseSettings())  # the instance and its environment, as `qtis ui` makes them
    port = free_port()
    workspace = tmp_path / "workspace.yaml"
    location = {"host": "127.0.0.1", "port": port, "location_name": "qtis"}
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": location}]}))
    logs = [tmp_path / "code-server.log", tmp_path / "daemon.log"]
    code_server = start_group([str(BIN / "dagster"), "api", "grpc", "-m", "tests.support.ticking",
                               "-h", "127.0.0.1", "-p", str(port)], logs[0], cwd=REPO)  # fmt: skip
    daemon = None
    try:
        _wait_for_line(code_server, logs[0], "Started Dagster code server", LOAD_S)
        daemon = start_group([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], logs[1],
                             cwd=REPO)  # fmt: skip
        with DagsterInstance.get() as instance:
            yield Service(market, workspace, instance, logs)
    finally:
        for process in (daemon, code_server):
            if process is not None:
                stop_group(process)
        drop_database(pg_server, with_database(pg_server, database))


def test_the_daemon_launches_scheduled_and_sensor_runs_within_the_queue_limits(service):
    save(service.url, report(data=True, run_id="drift-service"))
    with psycopg.connect(service.url) as lock:
        # the retrain's first step (GARCH) waits here; ingestion never touches this table
        lock.execute("lock table features.garch_vol in access exclusive mode")
        service.dagster("sensor", "start", "drift_sensor")
        retrain = service.wait(
            "retrain run from the drift sensor",
            lambda: service.run("retrain", DagsterRunStatus.STARTED, BY_SENSOR),
            LOAD_S,
        )
        assert retrain.tags["dagster/run_key"] == "drift-drift-service"
        assert "data drift of qtis-xgboost v1" in retrain.tags["qtis/reason"]
        assert retrain.tags["qtis/training"] == retrain.tags["qtis/features"] == "true"
        second = str(uuid.uuid4())
        service.dagster("job", "launch", "-j", "training_job", "--run-id", second)
        service.dagster("schedule", "start", "ingest_schedule")  # ticks at the next minute
        ticked = service.wait(
            "scheduled ingest", lambda: service.run("ingest_job", None, BY_SCHEDULE), TICK_S
        )
        service.dagster("schedule", "stop", "ingest_schedule")  # one tick is the point
        ingest = service.finished(ticked)
        assert ingest.status == DagsterRunStatus.SUCCESS
        assert service.status(retrain) == DagsterRunStatus.STARTED  # still held at GARCH
        queued = service.instance.get_run_by_id(second)
        assert queued.status == DagsterRunStatus.QUEUED  # the one training slot is taken
        assert ingest.tags.get("qtis/training") is None
        started = service.instance.get_run_record_by_id(retrain.run_id).start_time
        assert service.instance.get_run_record_by_id(ingest.run_id).start_time > started
        # run monitoring: the daemon cancels a run past its bound (interrupting the wait)
        service.instance.add_run_tags(retrain.run_id, {"dagster/max_runtime": "1"})
        ended = service.finished(retrain)
        lock.rollback()
    # ended by the cancel: Dagster marks the run failed when the interrupted step's failure
    # is recorded before the run worker takes the interrupt, cancelled otherwise
    assert ended.status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE)
    said = [e.message for e in service.instance.all_logs(retrain.run_id)]
    assert any("exceeding maximum runtime of 1 seconds" in m for m in said), said
    let_out = service.wait(
        "second training run let out of the queue",
        lambda: service.left_queue(second),
        LOAD_S,
    )
    service.finish(let_out)
