"""Rollups of market.bars by exchange-local day and week; compression on TimescaleDB.

Both backends get ``market.bars_weekly`` and ``market.bars_daily`` (the feature build's
``features.bars_weekly`` and ``features.bars_daily`` are views of them) and
``market.refresh_bar_rollups()``, which the feature build calls. On the fallback the weekly bars
are a materialized view (what the dbt model used to be) that this function refreshes. On
TimescaleDB ``market.bars`` is set up for compression (segment by symbol, order by time; the
policy comes from the settings) and ``market.bar_rollups`` lists the continuous aggregates made
per exchange time zone as symbols arrive (``warehouse.rollups``); until then the views compute.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from alembic import op

from warehouse.rollups import fallback_objects, reader_views

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

REFRESH_FALLBACK = """
create function market.refresh_bar_rollups() returns void language sql as
$$ refresh materialized view market.bars_weekly $$
"""
# continuous aggregates refresh by policy (and cannot inside the build's transaction)
REFRESH_TIMESCALE = """
create function market.refresh_bar_rollups() returns void language sql as $$ select $$
"""
# A plan over many chunks has a high estimated cost, so the server JIT-compiles it: the refresh
# of a rollup over 160 compressed chunks of the bundled sample (12k bars, milliseconds of work)
# spent 7 s compiling 639 functions, and a policy run over 30 s. The database's own setting
# reaches the policies' background workers too. Without the right to set it, a warning.
JIT_OFF = """
do $$ begin
    execute format('alter database %I set jit = off', current_database());
exception when insufficient_privilege then
    raise warning 'QTIS: cannot turn JIT off for database % (%); run ALTER DATABASE % SET '
        'jit = off as its owner, or rollup refreshes may spend seconds compiling plans',
        current_database(), sqlerrm, current_database();
end $$
"""


def _hypertable() -> bool:
    """market.bars is a hypertable (revision 0001 made it one when the extension was there)."""
    query = "select 1 from pg_extension where extname = 'timescaledb'"
    return op.get_bind().exec_driver_sql(query).first() is not None


def upgrade() -> None:
    if _hypertable():
        op.execute(
            "alter table market.bars set (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'symbol', timescaledb.compress_orderby = 'ts')"
        )
        op.execute(
            "create table market.bar_rollups (zone text primary key, daily text not null, "
            "weekly text not null, created_at timestamptz not null default now())"
        )
        for statement in reader_views([]):
            op.execute(statement)
        op.execute(REFRESH_TIMESCALE)
        op.execute(JIT_OFF)
    else:
        for statement in fallback_objects():
            op.execute(statement)
        op.execute(REFRESH_FALLBACK)


def downgrade() -> None:
    op.execute("drop function if exists market.refresh_bar_rollups()")
    if not _hypertable():
        op.execute("drop view if exists market.bars_daily cascade")
        op.execute("drop materialized view if exists market.bars_weekly cascade")
        return
    op.execute("drop view if exists market.bars_daily cascade")
    op.execute("drop view if exists market.bars_weekly cascade")
    rollups = op.get_bind().exec_driver_sql("select daily, weekly from market.bar_rollups")
    for daily, weekly in rollups.fetchall():
        op.execute(f"drop materialized view if exists market.{weekly}")
        op.execute(f"drop materialized view if exists market.{daily}")
    op.execute("drop table market.bar_rollups")
    op.execute("select remove_compression_policy('market.bars', if_exists => true)")
    op.execute(
        "select decompress_chunk(c, if_compressed => true) from show_chunks('market.bars') c"
    )
    op.execute("alter table market.bars set (timescaledb.compress = false)")
    op.execute(
        "do $$ begin execute format('alter database %I reset jit', current_database()); end $$"
    )
