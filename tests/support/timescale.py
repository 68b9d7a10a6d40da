"""An external PostgreSQL 15 + TimescaleDB server for the tests that need the extension.

The embedded server has no TimescaleDB; Debian's PostgreSQL 15 with the shared build
(``../shared/timescaledb/install.sh``) has. ``TIMESCALEDB_TEST_URL`` (an admin URL of a running
server that loads the extension) is used when set; otherwise a throw-away server is started on a
free loopback port with its data under the system temp dir. Interim: the shared test-session
fixture of issue 27 (two backends) replaces this.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("TIMESCALEDB_PG_BIN", "/usr/lib/postgresql/15/bin"))
EXTENSION = Path("/usr/share/postgresql/15/extension/timescaledb.control")
URL_ENV = "TIMESCALEDB_TEST_URL"
INSTALL = "run ../shared/timescaledb/install.sh (as root)"
COMPRESSED = (
    "select count(*) from timescaledb_information.chunks "
    "where hypertable_schema = 'market' and hypertable_name = 'bars' and is_compressed"
)


def missing() -> str | None:
    """Why no TimescaleDB server can be had here (None: one can)."""
    if os.environ.get(URL_ENV):
        return None
    if not (PG_BIN / "postgres").exists():
        return f"no PostgreSQL 15 server binaries in {PG_BIN}: {INSTALL} or set {URL_ENV}"
    if not EXTENSION.exists():
        return f"TimescaleDB is not installed for PostgreSQL 15: {INSTALL} or set {URL_ENV}"
    if os.geteuid() == 0 and not _has_user("postgres"):
        return "PostgreSQL refuses to run as root and there is no postgres user"
    return None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TimescaleServer:
    """A PostgreSQL 15 server that preloads TimescaleDB, owned by this test session."""

    root: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @classmethod
    def start(cls) -> TimescaleServer:
        root = Path(tempfile.mkdtemp(prefix="qtis-tsdb-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        server = cls(root, _free_port())
        data = root / "data"
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "shared_preload_libraries = 'timescaledb'\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {server.port}\n"
                f"unix_socket_directories = '{root}'\n"
                "timescaledb.telemetry_level = off\n"
                # one scheduler per database with the extension, plus a worker per running
                # policy job: the defaults (8 processes) run out with a few test databases
                "max_worker_processes = 48\n"
                "timescaledb.max_background_workers = 40\n"
                "fsync = off\n"
            )
        server._run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "start")
        return server

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def timescale_version(url: str) -> str | None:
    """The TimescaleDB version the server offers, or None."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select default_version from pg_available_extensions where name = 'timescaledb'"
        ).fetchone()
    return row[0] if row else None


def compress_old_chunks(url: str) -> int:
    """Compress the chunks of market.bars older than 30 days now (what the policy does on its
    schedule); returns how many chunks are compressed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select compress_chunk(c, if_not_compressed => true) "
            "from show_chunks('market.bars', older_than => interval '30 days') c"
        )
        return conn.execute(COMPRESSED).fetchone()[0]
