"""market.ensure_bars_partitions(months): a partition only for each month that has rows.

The range form (lo, hi) created one partition for every month between the earliest and the
latest bar: a row dated 2204 instead of 2024 made ~2,000 of them in the load's transaction and
ran out of lock slots. The loader now passes the months its rows fall in and calls this in its
own short transaction before the load. Callers are serialized by an advisory lock, and a
partition someone else created meanwhile (even without the lock) is not an error, so the call is
idempotent.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import runpy
from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ENSURE_MONTHS = """
create or replace function market.ensure_bars_partitions(months date[])
returns integer language plpgsql as $$
declare
    month_start date;
    created integer := 0;
    part text;
begin
    if not exists (select 1 from pg_partitioned_table p
                   join pg_class c on c.oid = p.partrelid
                   join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = 'market' and c.relname = 'bars') then
        return 0;  -- hypertable: TimescaleDB creates chunks itself
    end if;
    perform pg_advisory_xact_lock(hashtext('qtis_bars_partitions'));
    for month_start in
        select distinct date_trunc('month', m)::date from unnest(months) m where m is not null
    loop
        part := format('bars_%s', to_char(month_start, 'YYYYMM'));
        continue when to_regclass(format('market.%I', part)) is not null;
        begin
            execute format(
                'create table market.%I partition of market.bars '
                'for values from (%L) to (%L)',
                part,
                (month_start::timestamp at time zone 'UTC'),
                ((month_start + interval '1 month')::timestamp at time zone 'UTC'));
            created := created + 1;
        exception when duplicate_table or unique_violation then
            null;  -- created by a concurrent session that did not take the lock
        end;
    end loop;
    return created;
end $$;
"""


def upgrade() -> None:
    op.execute("drop function if exists market.ensure_bars_partitions(timestamptz, timestamptz)")
    op.execute(ENSURE_MONTHS)


def downgrade() -> None:
    op.execute("drop function if exists market.ensure_bars_partitions(date[])")
    # the range form as revision 0001 defined it (a module name cannot start with a digit)
    first = runpy.run_path(str(Path(__file__).with_name("0001_market_schema.py")))
    op.execute(first["ENSURE_PARTITIONS"])
