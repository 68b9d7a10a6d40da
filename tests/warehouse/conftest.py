"""The TimescaleDB-only warehouse tests run on the session's ``timescale`` backend (skipped with
the reason when ``--backends`` leaves it out or it cannot start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import timescale
from tests.support.backends import SELECTED, Backends
from tests.support.db import drop_database, fresh_database
from warehouse.schema import migrate


@pytest.fixture(scope="session")
def tsdb_server(request: pytest.FixtureRequest, backends: Backends) -> str:
    """Admin URL of the session's PostgreSQL 15 + TimescaleDB server."""
    if "timescale" not in request.config.stash[SELECTED]:
        pytest.skip("TimescaleDB only; --backends leaves timescale out")
    if why := timescale.missing():
        pytest.skip(f"TimescaleDB backend: {why}")
    return backends.server("timescale")


@pytest.fixture
def tsdb_url(tsdb_server: str) -> Iterator[str]:
    """A new database on the TimescaleDB server, migrated to the current schema. (Not copied
    from a template: TimescaleDB's scheduler keeps a connection to every database with the
    extension, which a template must not have.)"""
    url = fresh_database(tsdb_server)
    migrate(url)
    yield url
    drop_database(tsdb_server, url)
