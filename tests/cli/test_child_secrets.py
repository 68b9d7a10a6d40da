"""The database password reaches the tools ``qtis`` starts (psql, the MLflow UI and tracking
server, the Optuna dashboard) through their environment, never their command line: any user of
the machine can read a command line (``ps``), a process's environment only its owner.

The server here asks for the password (scram-sha-256), so each tool connecting at all proves the
password reached it; the tool's own command line, and its children's, are read back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import psycopg
import pytest

from tests.support.cli import qtis, stop_group
from tests.support.db import password_server
from tests.support.service import free_port
from warehouse import embedded
from warehouse.db import with_database

PASSWORD = "Tr0ub4dor&3 p@ss/w:rd"
# what would give the password away: as typed, and as the URL carries it
GIVEAWAYS = (PASSWORD, quote(PASSWORD, safe=""), "Tr0ub4dor")


@pytest.fixture(scope="module")
def protected_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgdata = tmp_path_factory.mktemp("pg-password") / "data"
    yield password_server(pgdata, PASSWORD)
    embedded.stop(pgdata)


@pytest.fixture
def env(protected_url: str, tmp_path: Path) -> dict[str, str]:
    return {"QTIS_DATABASE_URL": protected_url, "QTIS_HOME": str(tmp_path / ".qtis")}


def leaked(command_lines: list[str]) -> list[str]:
    return [line for line in command_lines if any(g in line for g in GIVEAWAYS)]


def test_psql_gets_the_password_from_its_environment(env: dict[str, str]):
    """``qtis db psql`` becomes psql; psql's shell escape prints psql's own command line."""
    own_command_line = r"\! tr '\0' ' ' < /proc/$PPID/cmdline"
    done = qtis("db", "psql", "-At", "-c", "select current_user", "-c", own_command_line, env=env)
    assert done.returncode == 0, done.stderr
    user, command_line = done.stdout.strip().splitlines()
    assert user == "postgres"  # connected, so the password reached psql
    assert "psql" in command_line
    assert not leaked([command_line]), command_line


def _command_lines_once_serving(args: list[str], url: str, env: dict[str, str]) -> list[str]:
    """Start ``qtis ARGS`` (a web UI), wait until ``url`` answers 200 (it read the database),
    return the command lines of the whole process tree, then stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.app", *args],
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for _ in range(600):  # bounded: up to ~3 minutes on a loaded machine
            if process.poll() is not None:
                pytest.fail(f"qtis {' '.join(args)} exited: {process.stderr.read().decode()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"qtis {' '.join(args)} never answered {url}")
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        return [" ".join(p.cmdline()) for p in tree if p.is_running()]
    finally:
        stop_group(process)


@pytest.mark.slow
def test_the_mlflow_ui_gets_the_password_from_its_environment(env: dict[str, str]):
    port = free_port()
    search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    lines = _command_lines_once_serving(["mlflow", "ui", "--port", str(port)], search, env)
    assert any("mlflow" in line for line in lines), lines
    assert not leaked(lines), lines


@pytest.mark.slow
def test_the_mlflow_server_gets_the_password_from_its_environment(env: dict[str, str]):
    port = free_port()
    search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    args = ["mlflow", "server", "--port", str(port), "--workers", "1"]
    lines = _command_lines_once_serving(args, search, env)
    assert any("mlflow server" in line for line in lines), lines
    assert not leaked(lines), lines


@pytest.mark.slow
def test_the_optuna_dashboard_gets_the_password_from_its_environment(env: dict[str, str]):
    port = free_port()
    studies = f"http://127.0.0.1:{port}/api/studies"
    lines = _command_lines_once_serving(["optuna", "dashboard", "--port", str(port)], studies, env)
    assert any("optuna-dashboard" in line for line in lines), lines
    assert not leaked(lines), lines


@pytest.mark.slow
def test_the_dagster_ui_gets_the_password_from_its_environment(env, protected_url, tmp_path):
    """``qtis ui`` on an external database: ``dagster dev``, its webserver, daemon and code
    server all run on the Postgres instance (a runs query answers from the database
    ``dagster``), and none has the password on its command line."""
    port = free_port()
    runs = f"http://127.0.0.1:{port}/graphql?query=" + quote("{runsOrError{__typename}}")
    env = env | {"DAGSTER_HOME": str(tmp_path / "dagster")}
    lines = _command_lines_once_serving(["ui", "--port", str(port)], runs, env)
    assert any("dagster_webserver" in line for line in lines), lines
    assert any("dagster._daemon" in line for line in lines), lines
    assert not leaked(lines), lines
    with psycopg.connect(with_database(protected_url, "dagster")) as conn:
        assert conn.execute("select to_regclass('public.runs') is not null").fetchone()[0]
