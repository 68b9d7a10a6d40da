"""A PostgreSQL 15 + TimescaleDB server for the warehouse's TimescaleDB tests (skipped with the
reason when none can be had). Interim: moves to the shared two-backend fixture of issue 27."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import timescale
from tests.support.db import drop_database, fresh_database
from warehouse.schema import migrate


@pytest.fixture(scope="session")
def tsdb_server() -> Iterator[str]:
    """Admin URL of a server that loads TimescaleDB."""
    reason = timescale.missing()
    if reason:
        pytest.skip(f"no TimescaleDB server: {reason}")
    url = os.environ.get(timescale.URL_ENV)
    if url:
        yield url
        return
    server = timescale.TimescaleServer.start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def tsdb_url(tsdb_server: str) -> Iterator[str]:
    """A new database on the TimescaleDB server, migrated to the current schema. (Not copied
    from a template: TimescaleDB's scheduler keeps a connection to every database with the
    extension, which a template must not have.)"""
    url = fresh_database(tsdb_server)
    migrate(url)
    yield url
    drop_database(tsdb_server, url)
