"""Market schema: instruments, bars (hypertable or range-partitioned), quarantine, flags.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

from warehouse.schema import timescaledb_available

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BARS_COLUMNS = """
    symbol  text             not null,
    ts      timestamptz      not null,
    open    double precision not null,
    high    double precision not null,
    low     double precision not null,
    close   double precision not null,
    volume  double precision not null,
    source  text             not null,
    primary key (symbol, ts)
"""

# Monthly partitions are created on demand by the loader (native path only): an insert into a
# month without a partition fails loudly instead of silently landing in a catch-all partition.
ENSURE_PARTITIONS = """
create or replace function market.ensure_bars_partitions(lo timestamptz, hi timestamptz)
returns integer language plpgsql as $$
declare
    month_start date := date_trunc('month', lo at time zone 'UTC')::date;
    created integer := 0;
    part text;
begin
    if not exists (select 1 from pg_partitioned_table p
                   join pg_class c on c.oid = p.partrelid
                   join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = 'market' and c.relname = 'bars') then
        return 0;  -- hypertable: TimescaleDB creates chunks itself
    end if;
    while month_start <= (hi at time zone 'UTC')::date loop
        part := format('bars_%s', to_char(month_start, 'YYYYMM'));
        if to_regclass(format('market.%I', part)) is null then
            execute format(
                'create table market.%I partition of market.bars '
                'for values from (%L) to (%L)',
                part,
                (month_start::timestamp at time zone 'UTC'),
                ((month_start + interval '1 month')::timestamp at time zone 'UTC'));
            created := created + 1;
        end if;
        month_start := (month_start + interval '1 month')::date;
    end loop;
    return created;
end $$;
"""


def upgrade() -> None:
    for schema in ("market", "features", "mlops", "runtime"):
        op.execute(f"create schema if not exists {schema}")

    op.execute(
        """
        create table market.instruments (
            symbol       text primary key,
            name         text,
            sector       text,
            asset_class  text not null default 'equity' check (asset_class in
                             ('equity', 'future', 'fx', 'crypto', 'etf', 'index')),
            currency     text not null default 'USD',
            exchange_tz  text not null default 'UTC',
            tick_size    double precision not null default 0.01 check (tick_size > 0),
            lot_size     double precision not null default 1 check (lot_size > 0),
            multiplier   double precision not null default 1 check (multiplier > 0),
            listed_from  date,
            delisted_at  date,
            updated_at   timestamptz not null default now()
        )
        """
    )

    bind = op.get_bind()
    if timescaledb_available(bind):
        op.execute("create extension if not exists timescaledb")
        op.execute(f"create table market.bars ({BARS_COLUMNS})")
        op.execute(
            "select create_hypertable('market.bars', 'ts', "
            "chunk_time_interval => interval '30 days')"
        )
    else:
        op.execute(f"create table market.bars ({BARS_COLUMNS}) partition by range (ts)")
        op.execute("create index bars_ts_brin on market.bars using brin (ts)")
    op.execute(ENSURE_PARTITIONS)

    op.execute(
        """
        create table market.bars_quarantine (
            id           bigserial primary key,
            symbol       text,
            ts           timestamptz,
            raw          jsonb not null,
            reason       text not null,
            source       text not null,
            ingested_at  timestamptz not null default now()
        )
        """
    )
    op.execute(
        "create index bars_quarantine_source_idx on market.bars_quarantine (source, ingested_at)"
    )
    # The same bad row from the same source is kept once, however often it is re-ingested.
    op.execute(
        "create unique index bars_quarantine_once on market.bars_quarantine "
        "(source, md5(raw::text), reason)"
    )
    op.execute(
        """
        create table market.bar_flags (
            symbol      text not null,
            ts          timestamptz not null,
            flag        text not null check (flag in ('gap', 'spike')),
            detail      text not null,
            source      text not null,
            flagged_at  timestamptz not null default now(),
            primary key (symbol, ts, flag)
        )
        """
    )
    op.execute(
        """
        create table market.ingest_runs (
            id            bigserial primary key,
            source        text not null,
            origin        text not null,
            symbols       text[] not null,
            rows_in       bigint not null,
            loaded        bigint not null,
            inserted      bigint not null,
            updated       bigint not null,
            unchanged     bigint not null,
            quarantined   bigint not null,
            flagged       bigint not null,
            first_ts      timestamptz,
            last_ts       timestamptz,
            started_at    timestamptz not null,
            finished_at   timestamptz not null default now()
        )
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists market.ingest_runs")
    op.execute("drop table if exists market.bar_flags")
    op.execute("drop table if exists market.bars_quarantine")
    op.execute("drop function if exists market.ensure_bars_partitions(timestamptz, timestamptz)")
    op.execute("drop table if exists market.bars cascade")
    op.execute("drop table if exists market.instruments")
