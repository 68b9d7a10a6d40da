"""The Dagster instance QTIS sets up for `qtis ui` and the demo: local files on the embedded
database, as before; on an external one (QTIS_DATABASE_URL) deploy/dagster/dagster.yaml, with runs,
events and schedules in the database ``dagster`` beside the warehouse, a run queue with limits and
run monitoring. The server asks for a password, so a run stored at all proves the password reached
Dagster, through its environment: neither the file nor what ``dagster dev`` puts on the command
lines of its webserver and daemon (the instance reference) holds it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import pytest
import yaml
from dagster import DagsterInstance, DagsterRun, QueuedRunCoordinator
from dagster._serdes import serialize_value
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from orchestration.instance import dagster_home
from orchestration.jobs import jobs
from tests.support.db import drop_database, password_server
from warehouse import embedded
from warehouse.db import with_database
from warehouse.settings import WarehouseSettings

SERVICE_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster" / "dagster.yaml"
PASSWORD = "Tr0ub4dor&3 p@ss/w:rd"
GIVEAWAYS = (PASSWORD, quote(PASSWORD, safe=""), "Tr0ub4dor")
# what dagster_home exports for the yaml's `env:` and for libpq
EXPORTED = ("DAGSTER_HOME", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST",
            "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "PGHOST")  # fmt: skip


@pytest.fixture(scope="module")
def protected_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgdata = tmp_path_factory.mktemp("pg-dagster") / "data"
    yield password_server(pgdata, PASSWORD)
    embedded.stop(pgdata)


@pytest.fixture
def qtis_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh QTIS_HOME, no DAGSTER_HOME; what dagster_home exports is undone afterwards."""
    for key in EXPORTED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("QTIS_DATABASE_URL", raising=False)
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    return tmp_path / ".qtis"


def test_an_external_database_keeps_runs_in_postgres(protected_url, qtis_home, monkeypatch):
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("QTIS_DATABASE_URL", protected_url)
    monkeypatch.setenv("QTIS_DAGSTER_DATABASE", database)
    home = dagster_home(WarehouseSettings())
    assert home == (qtis_home / "dagster").resolve()
    config = (home / "dagster.yaml").read_text()
    assert config.endswith(SERVICE_YAML.read_text())
    assert not [g for g in GIVEAWAYS if g in config]
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 6
        assert {(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits} == {
            ("qtis/training", 1),
            ("qtis/features", 1),
        }
        assert instance.run_monitoring_enabled
        run = instance.add_run(DagsterRun(job_name="stored_where"))
        instance.report_engine_event("an event, announced with NOTIFY", run)
        reference = serialize_value(instance.get_ref())
    assert not [g for g in GIVEAWAYS if g in reference]
    with psycopg.connect(with_database(protected_url, database)) as conn:
        stored = conn.execute("select run_id, pipeline_name from runs").fetchall()
        events = conn.execute("select run_id from event_logs").fetchall()
    assert stored == [(run.run_id, "stored_where")]
    assert events == [(run.run_id,)]


def test_a_url_with_its_host_and_user_in_the_query_string(pg_server, qtis_home, monkeypatch):
    """``postgresql:///db?host=/socket/dir&user=...``, a form libpq reads: nothing before the
    path, so the socket directory reaches Dagster through PGHOST."""
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    socket = parse_qs(urlsplit(pg_server).query)["host"][0]
    monkeypatch.setenv("QTIS_DATABASE_URL", f"postgresql:///postgres?host={socket}&user=postgres")
    monkeypatch.setenv("QTIS_DAGSTER_DATABASE", database)
    dagster_home(WarehouseSettings())
    assert os.environ["PGHOST"] == socket and os.environ["DAGSTER_PG_HOST"] == ""
    with DagsterInstance.get() as instance:
        run = instance.add_run(DagsterRun(job_name="through_the_socket"))
    with psycopg.connect(with_database(pg_server, database)) as conn:
        assert conn.execute("select run_id from runs").fetchall() == [(run.run_id,)]
    drop_database(pg_server, with_database(pg_server, database))


def test_the_embedded_database_keeps_runs_in_local_files(protected_url, qtis_home, monkeypatch):
    """The default is today's; the file follows QTIS_DATABASE_URL while QTIS wrote it, and a
    dagster.yaml of the user's own (without QTIS's first line) is left alone."""
    home = dagster_home(WarehouseSettings())
    assert yaml.safe_load((home / "dagster.yaml").read_text()) == {"telemetry": {"enabled": False}}
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    monkeypatch.setenv("QTIS_DATABASE_URL", protected_url)
    assert (
        "postgres"
        in yaml.safe_load((dagster_home(WarehouseSettings()) / "dagster.yaml").read_text())[
            "storage"
        ]
    )
    monkeypatch.delenv("QTIS_DATABASE_URL")
    assert "storage" not in yaml.safe_load(
        (dagster_home(WarehouseSettings()) / "dagster.yaml").read_text()
    )
    own = "telemetry:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(own)
    monkeypatch.setenv("QTIS_DATABASE_URL", protected_url)
    assert (dagster_home(WarehouseSettings()) / "dagster.yaml").read_text() == own


def test_training_runs_take_the_one_training_slot_and_ingestion_none():
    """The tags the queue's limits count: every job that trains or tunes is limited, every job
    that rebuilds the dbt tables too; ingestion and monitoring are never held back."""
    tags = {job.name: job.tags for job in jobs}
    training = {name for name, t in tags.items() if t.get("qtis/training") == "true"}
    features = {name for name, t in tags.items() if t.get("qtis/features") == "true"}
    assert training == {"training_job", "tuning_job", "retrain", "daily_pipeline",
                        "online_update_job"}  # fmt: skip
    assert features == {"features_job", "retrain", "daily_pipeline", "daily_pull_job"}
    assert not ({"ingest_job", "monitoring_job"} & (training | features))
