"""How ``market.bars`` is stored, for ``qtis db status``: chunks, compression and the rollups'
freshness on TimescaleDB; the monthly partitions on the fallback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg

from warehouse.rollups import ensure_zones, watermark, zones
from warehouse.schema import BarsStorage
from warehouse.settings import WarehouseSettings
from warehouse.timescale import apply_policies, chunk_interval, compression_policy, has_timescaledb

_CHUNKS = """
select count(*), count(*) filter (where is_compressed)
from timescaledb_information.chunks where hypertable_schema = 'market' and hypertable_name = 'bars'
"""
_COMPRESSION = """
select before_compression_total_bytes, after_compression_total_bytes
from hypertable_compression_stats('market.bars')
"""
# a job that never succeeded has finished at '-infinity'
_JOB = """
select nullif(s.last_successful_finish, '-infinity'),
    nullif(coalesce(s.next_start, j.next_start), '-infinity'), j.schedule_interval
from timescaledb_information.jobs j left join timescaledb_information.job_stats s using (job_id)
where j.proc_name = 'policy_refresh_continuous_aggregate'
  and j.hypertable_schema = 'market' and j.hypertable_name = %s
"""
_PARTITIONS = """
select count(*), min(c.relname), max(c.relname)
from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'market.bars'::regclass
"""


@dataclass(frozen=True)
class RollupState:
    """One continuous aggregate: how far it is materialized and when its policy ran."""

    relation: str  # what readers read: market.bars_daily or market.bars_weekly
    name: str  # the aggregate of ``zone``
    zone: str
    materialized_to: datetime | None
    refreshed_at: datetime | None
    next_refresh: datetime | None
    every: timedelta | None


@dataclass(frozen=True)
class StorageReport:
    kind: BarsStorage
    total_bytes: int = 0
    # TimescaleDB
    chunks: int = 0
    compressed_chunks: int = 0
    chunk_interval: timedelta | None = None
    before_bytes: int | None = None  # of the compressed chunks, before and after
    after_bytes: int | None = None
    compress_after: timedelta | None = None
    rollups: list[RollupState] = field(default_factory=list)
    # partitioned fallback: monthly partitions
    partitions: int = 0
    first_month: date | None = None
    last_month: date | None = None

    @property
    def compression_ratio(self) -> float | None:
        if not self.before_bytes or not self.after_bytes:
            return None
        return self.before_bytes / self.after_bytes


def storage_report(url: str, kind: BarsStorage) -> StorageReport:
    """What ``kind`` of storage (see :func:`warehouse.schema.bars_storage`) holds now."""
    if kind == "missing":
        return StorageReport(kind)
    with psycopg.connect(url) as conn:
        if kind == "partitioned":
            return _partitions(conn)
        size = conn.execute("select hypertable_size('market.bars')").fetchone()[0]
        chunks, compressed = conn.execute(_CHUNKS).fetchone()
        before, after = conn.execute(_COMPRESSION).fetchone() or (None, None)
        return StorageReport(
            kind,
            total_bytes=size or 0,
            chunks=chunks,
            compressed_chunks=compressed,
            chunk_interval=chunk_interval(conn),
            before_bytes=before,
            after_bytes=after,
            compress_after=compression_policy(conn),
            rollups=_rollups(conn),
        )


def _partitions(conn: psycopg.Connection) -> StorageReport:
    count, first, last = conn.execute(_PARTITIONS).fetchone()
    size = conn.execute(
        "select coalesce(sum(pg_total_relation_size(inhrelid)), 0) from pg_inherits "
        "where inhparent = 'market.bars'::regclass"
    ).fetchone()[0]

    def month(name: str | None) -> date | None:  # bars_YYYYMM
        return None if name is None else date(int(name[5:9]), int(name[9:11]), 1)

    return StorageReport(
        "partitioned",
        total_bytes=int(size),
        partitions=count,
        first_month=month(first),
        last_month=month(last),
    )


def _rollups(conn: psycopg.Connection) -> list[RollupState]:
    states = []
    for names in zones(conn):
        for relation, cagg in (("bars_daily", names.daily), ("bars_weekly", names.weekly)):
            job = conn.execute(_JOB, (cagg,)).fetchone() or (None, None, None)
            mark = watermark(conn, cagg)
            states.append(RollupState(relation, cagg, names.zone, mark, *job))
    return states


def configure_storage(url: str, settings: WarehouseSettings) -> None:
    """Apply the TimescaleDB settings (compression and refresh policies, rollups for every
    exchange zone already in ``market.instruments``); nothing to do on the fallback."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not has_timescaledb(conn):
            return
        apply_policies(conn, settings)
        known = conn.execute("select distinct exchange_tz from market.instruments").fetchall()
        ensure_zones(conn, [zone for (zone,) in known], settings)
