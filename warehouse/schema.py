"""Versioned schema migrations (alembic) and storage detection for ``market.bars``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from warehouse.db import sqlalchemy_url, unreachable

VERSION_TABLE = "qtis_schema_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

BarsStorage = Literal["timescaledb", "partitioned", "missing"]


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def timescaledb_available(conn: sa.Connection) -> bool:
    """True when the server can load TimescaleDB (installed, whether or not created yet)."""
    row = conn.execute(
        sa.text("select 1 from pg_available_extensions where name = 'timescaledb'")
    ).first()
    return row is not None


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    try:
        conn = engine.connect()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:  # unreachable, refused,
        raise unreachable(url, exc.orig) from exc  # or a URL libpq cannot read
    with conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def migrate(url: str) -> tuple[str | None, str]:
    """Upgrade to head; a no-op when already there. Returns (revision before, revision after).
    Every ``qtis`` command starts here: a server it cannot reach is the one-line
    ``ConnectionError`` (without the password) the CLI prints, not SQLAlchemy's traceback."""
    before = current_revision(url)
    head = head_revision()
    if before != head:
        engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
        with engine.begin() as conn:
            # One migrator at a time: concurrent starters (Dagster runs, CLI) wait here.
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('qtis_migrations'))"))
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return before, head


def bars_storage(url: str) -> BarsStorage:
    """How ``market.bars`` is stored on this database."""
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('market.bars')")).scalar() is None:
            return "missing"
        hyper = conn.execute(
            sa.text("select 1 from pg_extension where extname = 'timescaledb'")
        ).first()
        if hyper is not None:
            is_hyper = conn.execute(
                sa.text(
                    "select 1 from timescaledb_information.hypertables "
                    "where hypertable_schema = 'market' and hypertable_name = 'bars'"
                )
            ).first()
            if is_hyper is not None:
                return "timescaledb"
        partitioned = conn.execute(
            sa.text("select 1 from pg_partitioned_table where partrelid = 'market.bars'::regclass")
        ).first()
        return "partitioned" if partitioned is not None else "missing"
