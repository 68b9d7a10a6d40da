"""An external PostgreSQL 15 + TimescaleDB server for the test session.

The embedded wheel is PostgreSQL 18 without TimescaleDB; users who outgrow it point
``QTIS_DATABASE_URL`` at a managed PostgreSQL/TimescaleDB. The storage tests run on both, so this
starts Debian's PostgreSQL 15 with the TimescaleDB build of ``../shared/timescaledb`` (installed
by its ``install.sh``, which ``make test`` runs as root): on loopback, a free port, data in a
fresh directory under /tmp, removed again by :meth:`TimescaleServer.stop`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.service import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
COMPRESSED = (
    "select count(*) from timescaledb_information.chunks "
    "where hypertable_schema = 'market' and hypertable_name = 'bars' and is_compressed"
)
EXTENSION_CONTROL = Path("/usr/share/postgresql/15/extension/timescaledb.control")
INSTALL_HINT = "run ../shared/timescaledb/install.sh as root (`make test` does when run as root)"

# Settings that make a throwaway server quicker without changing what a query returns.
CONF = """
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{root}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
# TimescaleDB runs a scheduler per database that has the extension (each test makes one); room
# for them and for the jobs of its policies, beside parallel query workers
max_worker_processes = 48
timescaledb.max_background_workers = 40
"""


def missing() -> str | None:
    """Why this machine cannot start the TimescaleDB server (None when it can)."""
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}/postgres): {INSTALL_HINT}"
    if not EXTENSION_CONTROL.exists():
        return (
            f"TimescaleDB is not installed for PostgreSQL 15 ({EXTENSION_CONTROL}): {INSTALL_HINT}"
        )
    return None


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as Debian's ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass(frozen=True)
class TimescaleServer:
    root: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, attempts: int = 3) -> TimescaleServer:
        """initdb and start a server in a new directory under /tmp; a port that another process
        took between choosing and binding is retried with another one."""
        root = Path(tempfile.mkdtemp(prefix="qtis-timescale-", dir="/tmp"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        data, log = root / "data", root / "log"
        try:
            _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync"])  # fmt: skip
            base = (data / "postgresql.conf").read_text()
            for _ in range(attempts):
                server = cls(root, free_port())
                (data / "postgresql.conf").write_text(
                    base + CONF.format(port=server.port, root=root)
                )
                start = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t",
                         "120", "start"]  # fmt: skip
                if _run(start, check=False):
                    return server
            raise RuntimeError(f"the TimescaleDB server did not start: {log.read_text()[-2000:]}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            _run([str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w",
                  "stop"])  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _run(args: list[str], check: bool = True) -> bool:
    """Run a server tool (as the server's user); False, or with ``check`` an error that quotes
    its output, when it fails."""
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=180)
    if done.returncode != 0 and check:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}".strip())
    return done.returncode == 0


def compress_old_chunks(url: str) -> int:
    """Compress the chunks of market.bars older than 30 days now (what the policy does on its
    schedule); returns how many chunks are compressed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select compress_chunk(c, if_not_compressed => true) "
            "from show_chunks('market.bars', older_than => interval '30 days') c"
        )
        return conn.execute(COMPRESSED).fetchone()[0]
