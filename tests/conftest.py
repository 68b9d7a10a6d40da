"""One embedded Postgres per test session; every test that needs data gets its own database.

What is slow to make (a migrated schema, the bundled sample with a full feature build) is made
once per session and copied (``create database ... template``, a file copy) for each user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

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


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _copy_database(admin_url: str, template_url: str) -> str:
    """A new database with ``template_url``'s contents (nobody may be connected to it)."""
    name, template = f"t_{uuid.uuid4().hex[:12]}", _database_name(template_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (template,),
        )
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return with_database(admin_url, name)


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> str:
    url = _fresh_database(pg_server)
    migrate(url)
    return url


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A new, empty database (no migrations applied)."""
    url = _fresh_database(pg_server)
    yield url
    _drop_database(pg_server, url)


def _drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {_database_name(url)} with (force)")


@pytest.fixture
def db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """A new database migrated to the current schema."""
    url = _copy_database(pg_server, migrated_template)
    yield url
    _drop_database(pg_server, url)


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


@pytest.fixture(scope="session")
def built_template(pg_server, migrated_template, bundled):
    """The whole bundled sample, its GARCH fits and a full feature build, made once."""
    from tests.transforms.conftest import load_bars
    from transforms.dbt_runner import build
    from transforms.garch import update_garch

    url = _copy_database(pg_server, migrated_template)
    load_bars(url, bundled)
    update_garch(url)
    report = build(url, full_refresh=True)
    assert report.success, [(n.name, n.message) for n in report.failures()]
    return url, report


@pytest.fixture(scope="module")
def built(pg_server, built_template):
    """A copy of ``built_template`` for one module, which may write to it."""
    template_url, report = built_template
    return _copy_database(pg_server, template_url), report
