"""One embedded Postgres per test session; every test that needs data gets its own database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from warehouse import embedded
from warehouse.db import with_database
from warehouse.providers.base import RawBars
from warehouse.providers.bundled import BundledProvider
from warehouse.schema import migrate


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgdata = tmp_path_factory.mktemp("pg") / "data"
    admin_url = embedded.start(pgdata)
    yield admin_url
    embedded.stop(pgdata)


def _fresh_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    embedded.ensure_database(admin_url, name)
    return with_database(admin_url, name)


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A new, empty database (no migrations applied)."""
    url = _fresh_database(pg_server)
    yield url
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"drop database if exists {url.rsplit('/', 1)[1].split('?')[0]} with (force)")


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A new database migrated to the current schema."""
    migrate(empty_db_url)
    return empty_db_url


@pytest.fixture
def qtis_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point QTIS settings (and so the CLI) at the test database."""
    monkeypatch.setenv("QTIS_DATABASE_URL", db_url)
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return db_url


def table_rows(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select * from {table} order by 1, 2").fetchall()


@pytest.fixture(scope="session")
def bundled() -> RawBars:
    return BundledProvider().load()


@pytest.fixture(scope="module")
def built(pg_server, bundled):
    """A database with the whole bundled sample, its GARCH fits and a full feature build
    (read-only, per module)."""
    from tests.transforms.conftest import load_bars
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse.schema import migrate

    url = _fresh_database(pg_server)
    migrate(url)
    load_bars(url, bundled)
    update_garch(url)
    report = build(url, full_refresh=True)
    assert report.success, [(n.name, n.message) for n in report.failures()]
    return url, report
