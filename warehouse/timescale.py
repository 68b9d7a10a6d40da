"""TimescaleDB's storage of ``market.bars``: the chunk interval, chosen from the bar frequency,
and the compression policy, from the settings. Everything here is a no-op on the partitioned
fallback (a server without the extension), so callers need not ask which one they have.

Chunks hold a time range of every symbol. Compression packs each symbol's rows of a chunk into
batches (segment by symbol, ordered by time), so a chunk should hold a few hundred bars per
symbol: a year of daily bars, a day of one-minute bars. Too short an interval gives thousands
of tiny chunks (daily bars in 30-day chunks: 21 rows per symbol, poorly compressed, and many
chunks to plan for every query).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

import psycopg

from warehouse.settings import WarehouseSettings

# intervals to choose from, shortest first; the longest is also the ceiling
LADDER = tuple(timedelta(days=d) for d in (1, 7, 30, 90, 365))
# bars of one symbol a chunk should hold (a year of daily bars has ~252)
BARS_PER_CHUNK = 200
# one policy change at a time: the CLI, Dagster and ingest may all apply the settings
_LOCK = "select pg_advisory_xact_lock(hashtext('qtis_timescale_policies'))"
_HYPERTABLE = """
select d.time_interval
from timescaledb_information.dimensions d
where d.hypertable_schema = 'market' and d.hypertable_name = 'bars'
"""
_COMPRESSION_JOB = """
select (config->>'compress_after')::interval
from timescaledb_information.jobs
where proc_name = 'policy_compression'
  and hypertable_schema = 'market' and hypertable_name = 'bars'
"""


def chunk_interval_for(bars_per_day: float) -> timedelta:
    """The shortest interval of :data:`LADDER` in which a symbol has ``BARS_PER_CHUNK`` bars
    (``bars_per_day``: per symbol and calendar day)."""
    for interval in LADDER:
        if bars_per_day * (interval / timedelta(days=1)) >= BARS_PER_CHUNK:
            return interval
    return LADDER[-1]


def bars_per_day(spans: Iterable[tuple[int, datetime, datetime]]) -> float | None:
    """Median over symbols of bars per calendar day, from (bars, first ts, last ts) of each
    symbol; None when no symbol has two bars at different times."""
    rates = [
        (n - 1) / ((last - first) / timedelta(days=1))
        for n, first, last in spans
        if n > 1 and last > first
    ]
    return statistics.median(rates) if rates else None


def chunk_interval(conn: psycopg.Connection) -> timedelta | None:
    """The interval of the chunks ``market.bars`` creates next; None on the fallback."""
    if not has_timescaledb(conn):
        return None
    row = conn.execute(_HYPERTABLE).fetchone()
    return row[0] if row else None


def has_timescaledb(conn: psycopg.Connection) -> bool:
    """True when the extension is created in this database."""
    query = "select 1 from pg_extension where extname = 'timescaledb'"
    return conn.execute(query).fetchone() is not None


def fit_chunk_interval(
    conn: psycopg.Connection, rate: float | None, settings: WarehouseSettings
) -> timedelta | None:
    """Set the interval of chunks to come before a load: ``QTIS_TSDB_CHUNK_DAYS`` when set,
    else the one for ``rate`` (bars per symbol and day) when the hypertable has no chunk yet:
    the first load decides, later ones (a day of new bars) say little about the frequency.
    Chunks already made keep theirs. Returns the interval set, None when nothing changed."""
    current = chunk_interval(conn)
    if current is None:
        return None
    if settings.tsdb_chunk_days is not None:
        wanted = timedelta(days=settings.tsdb_chunk_days)
    elif rate is None or _has_chunks(conn):
        return None
    else:
        wanted = chunk_interval_for(rate)
    if wanted == current:
        return None
    with conn.transaction():
        conn.execute("select set_chunk_time_interval('market.bars', %s::interval)", (wanted,))
    return wanted


def _has_chunks(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists (select from show_chunks('market.bars'))").fetchone()[0]


def compression_policy(conn: psycopg.Connection) -> timedelta | None:
    """The age after which the policy compresses chunks; None: no policy."""
    row = conn.execute(_COMPRESSION_JOB).fetchone()
    return row[0] if row else None


def apply_policies(conn: psycopg.Connection, settings: WarehouseSettings) -> None:
    """Make the compression policy of ``market.bars`` what the settings say (none when
    ``QTIS_TSDB_COMPRESS_AFTER_DAYS`` is 0); unchanged settings change nothing."""
    if chunk_interval(conn) is None:
        return
    wanted = timedelta(days=settings.tsdb_compress_after_days) or None
    with conn.transaction():
        conn.execute(_LOCK)
        current = compression_policy(conn)
        if current == wanted:
            return
        if current:
            conn.execute("select remove_compression_policy('market.bars')")
        if wanted:
            conn.execute(
                "select add_compression_policy('market.bars', compress_after => %s::interval)",
                (wanted,),
            )
