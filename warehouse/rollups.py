"""Bars rolled up by exchange-local day and week: ``market.bars_daily`` (intraday bars resampled
to daily) and ``market.bars_weekly``, the same relations, columns and rows on both backends.

Fallback (no TimescaleDB): ``bars_weekly`` is a materialized view refreshed by the feature build
(``market.refresh_bar_rollups()``, the dbt model's pre-hook), ``bars_daily`` a plain view.

TimescaleDB: continuous aggregates, refreshed by policy and real-time (rows newer than what
is materialized are aggregated at read time). ``time_bucket`` takes one constant time zone per
aggregate and symbols trade in different zones, so each exchange zone gets its own pair (daily,
and weekly built on the daily one), listed in ``market.bar_rollups``; the views take each
symbol's rows from its zone's pair, and compute those of a zone without one from the bars.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from warehouse.settings import WarehouseSettings
from warehouse.timescale import has_timescaledb

# exchange-local date of a bar, and its week (as the dbt model has always computed it)
_DAY = "(b.ts at time zone i.exchange_tz)::date"
_WEEK = f"date_trunc('week', {_DAY})::date"
_COMPUTED = """
select b.symbol, {bucket} as {name},
    (array_agg(b.open order by b.ts))[1] as open, max(b.high) as high, min(b.low) as low,
    (array_agg(b.close order by b.ts))[count(*)] as close, sum(b.volume) as volume,
    count(*) as bars
from market.bars b join market.instruments i using (symbol)
{where}
group by 1, 2
"""
_ZONE_ROWS = """
select c.symbol, (c.bucket at time zone {zone})::date as {name}, c.open, c.high, c.low,
    c.close, c.volume, c.bars
from {cagg} c join market.instruments i on i.symbol = c.symbol and i.exchange_tz = {zone}
"""
_DAILY_CAGG = """
create materialized view {cagg}
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select symbol, time_bucket('1 day', ts, {zone}) as bucket, first(open, ts) as open,
    max(high) as high, min(low) as low, last(close, ts) as close, sum(volume) as volume,
    count(*) as bars
from market.bars
group by symbol, time_bucket('1 day', ts, {zone})
with no data
"""
_WEEKLY_CAGG = """
create materialized view {cagg}
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select symbol, time_bucket('1 week', bucket, {zone}) as bucket, first(open, bucket) as open,
    max(high) as high, min(low) as low, last(close, bucket) as close, sum(volume) as volume,
    sum(bars)::bigint as bars
from {daily}
group by symbol, time_bucket('1 week', bucket, {zone})
with no data
"""
# internal functions: the public views do not show how far an aggregate is materialized (an
# aggregate never refreshed has its watermark at the start of time, 4714 BC: none)
_WATERMARK = """
select case when w > '0001-01-01' then w end
from _timescaledb_catalog.continuous_agg c, _timescaledb_functions.to_timestamp(
    _timescaledb_functions.cagg_watermark(c.mat_hypertable_id)) w
where c.user_view_schema = 'market' and c.user_view_name = %s
"""
_REFRESH_JOB = """
select schedule_interval, (config->>'buckets_per_batch')::int from timescaledb_information.jobs
where proc_name = 'policy_refresh_continuous_aggregate'
  and hypertable_schema = 'market' and hypertable_name = %s
"""
_EVERYWHERE = sql.SQL("")
PERIODS = {"daily": ("day", _DAY), "weekly": ("week", _WEEK)}


@dataclass(frozen=True)
class ZoneRollups:
    """The continuous aggregates of one exchange time zone (names in schema ``market``)."""

    zone: str
    daily: str
    weekly: str


def aggregate_names(zone: str) -> ZoneRollups:
    """Readable and distinct names: ``Etc/GMT+5`` and ``Etc/GMT-5`` share a slug, not a hash."""
    slug = re.sub(r"[^a-z0-9]+", "_", zone.lower()).strip("_")[:32]
    digest = hashlib.md5(zone.encode()).hexdigest()[:6]
    return ZoneRollups(zone, f"bars_daily_{slug}_{digest}", f"bars_weekly_{slug}_{digest}")


def _rel(name: str) -> sql.Composable:
    return sql.Identifier("market", name)


def reader_views(zones: list[ZoneRollups]) -> list[str]:
    """``create or replace view`` of ``market.bars_daily`` and ``market.bars_weekly`` over the
    aggregates of ``zones`` (TimescaleDB), the rest computed from ``market.bars``."""
    statements = []
    for period, (name, _) in PERIODS.items():
        parts = [
            sql.SQL(_ZONE_ROWS).format(
                zone=sql.Literal(z.zone), name=sql.SQL(name), cagg=_rel(getattr(z, period))
            )
            for z in zones
        ]
        covered = sql.SQL("where i.exchange_tz <> all({}::text[])").format(
            sql.Literal([z.zone for z in zones])
        )
        parts.append(computed(period, covered if zones else _EVERYWHERE))
        body = sql.SQL("union all").join(parts)
        view = sql.SQL("create or replace view {} as {}").format(_rel(f"bars_{period}"), body)
        statements.append(view.as_string(None))
    return statements


def computed(period: str, where: sql.Composable = _EVERYWHERE) -> sql.Composable:
    """The rollup of ``period`` computed from the bars (the fallback's definition)."""
    name, bucket = PERIODS[period]
    return sql.SQL(_COMPUTED).format(bucket=sql.SQL(bucket), name=sql.SQL(name), where=where)


def fallback_objects() -> list[str]:
    """The fallback's relations (what migration 0011 creates without TimescaleDB)."""
    return [
        sql.SQL("create materialized view market.bars_weekly as {}")
        .format(computed("weekly"))
        .as_string(None),
        "create unique index bars_weekly_key on market.bars_weekly (symbol, week)",
        sql.SQL("create view market.bars_daily as {}").format(computed("daily")).as_string(None),
    ]


def zones(conn: psycopg.Connection) -> list[ZoneRollups]:
    """The zones that have aggregates (none on the fallback)."""
    if not has_timescaledb(conn):
        return []
    rows = conn.execute("select zone, daily, weekly from market.bar_rollups order by zone")
    return [ZoneRollups(*row) for row in rows]


def ensure_zones(
    conn: psycopg.Connection, wanted: Iterable[str], settings: WarehouseSettings
) -> list[str]:
    """Aggregates (and their refresh policies) for each zone of ``wanted`` without them, and
    the views over them; returns the zones added. A no-op on the fallback. Names that are not
    time zones of the server are left to the computed part of the views."""
    if not has_timescaledb(conn):
        return []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('qtis_bar_rollups'))")
        have = {z.zone for z in zones(conn)}
        new = conn.execute(
            "select name from pg_timezone_names where name = any(%s) order by 1",
            (sorted(set(wanted) - have),),
        ).fetchall()
        for (zone,) in new:
            names = aggregate_names(zone)
            _create_aggregates(conn, names)
            conn.execute(
                "insert into market.bar_rollups (zone, daily, weekly) values (%s, %s, %s)",
                (names.zone, names.daily, names.weekly),
            )
        if new:
            for statement in reader_views(zones(conn)):
                conn.execute(statement)
    apply_refresh_policies(conn, settings)
    return [zone for (zone,) in new]


def _create_aggregates(conn: psycopg.Connection, names: ZoneRollups) -> None:
    zone = sql.Literal(names.zone)
    conn.execute(sql.SQL(_DAILY_CAGG).format(cagg=_rel(names.daily), zone=zone))
    daily = _rel(names.daily)
    conn.execute(sql.SQL(_WEEKLY_CAGG).format(cagg=_rel(names.weekly), zone=zone, daily=daily))


def apply_refresh_policies(conn: psycopg.Connection, settings: WarehouseSettings) -> None:
    """A refresh policy on every aggregate, every ``QTIS_TSDB_ROLLUP_REFRESH_MINUTES``, over
    the whole history (late bars anywhere are picked up), each run one transaction
    (``buckets_per_batch => 0``). TimescaleDB's default refreshes one bucket per transaction,
    newest first: the watermark jumps to the newest bar at once and reads miss the older
    buckets until the run ends (70 s for the bundled sample's 4,700 days, against 0.1 s)."""
    every = timedelta(minutes=settings.tsdb_rollup_refresh_minutes)
    for names in zones(conn):
        for cagg in (names.daily, names.weekly):
            with conn.transaction():
                row = conn.execute(_REFRESH_JOB, (cagg,)).fetchone()
                if row == (every, 0):
                    continue
                relation = f"market.{cagg}"
                if row:
                    conn.execute("select remove_continuous_aggregate_policy(%s)", (relation,))
                conn.execute(
                    "select add_continuous_aggregate_policy(%s, start_offset => null, "
                    "end_offset => null, schedule_interval => %s::interval, "
                    "buckets_per_batch => 0)",
                    (relation, every),
                )


def watermark(conn: psycopg.Connection, cagg: str) -> datetime | None:
    """How far ``market.<cagg>`` is materialized (None: nothing yet)."""
    row = conn.execute(_WATERMARK, (cagg,)).fetchone()
    return row[0] if row else None


def refresh_rollups(conn: psycopg.Connection) -> None:
    """Bring every rollup up to date now (``conn`` in autocommit: TimescaleDB refreshes outside
    a transaction)."""
    if not has_timescaledb(conn):
        conn.execute("select market.refresh_bar_rollups()")
        return
    for names in zones(conn):
        for cagg in (names.daily, names.weekly):  # the weekly reads the daily
            conn.execute("call refresh_continuous_aggregate(%s, null, null)", (f"market.{cagg}",))


def refresh_changed(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """After a load of bars in [start, end] (``conn`` in autocommit): refresh the aggregates
    where they had materialized that span, so late and corrected bars show at once instead of
    at the next policy run. The window is clamped to what is materialized (newer rows are
    read in real time): refreshing beyond it would leave a gap above the old watermark that
    neither the materialized nor the real-time part covers. Nothing to do on the fallback,
    whose weekly bars are refreshed by the feature build, as ever."""
    for names in zones(conn):
        for cagg, width in ((names.daily, 1), (names.weekly, 7)):
            materialized = watermark(conn, cagg)
            if materialized is None or start >= materialized:
                continue  # all of it is read in real time
            lo = start - timedelta(days=width)  # whole buckets
            hi = min(end + timedelta(days=width), materialized)
            call = "call refresh_continuous_aggregate(%s, %s, %s)"
            conn.execute(call, (f"market.{cagg}", lo, hi))
