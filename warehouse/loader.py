"""Bulk load: binary COPY into a staging table, then one idempotent upsert into ``market.bars``.

Monthly partitions (native partitioning) are created first, in a short transaction of their own,
for the months that have rows and no others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import psycopg

from warehouse.announce import announce
from warehouse.providers.base import Instrument
from warehouse.rollups import refresh_changed
from warehouse.settings import WarehouseSettings
from warehouse.timescale import bars_per_day, fit_chunk_interval

STAGE_COLUMNS = """
    symbol text not null, ts timestamptz not null,
    open float8, high float8, low float8, close float8 not null, volume float8
"""
_STAGE = f"create temp table bars_stage ({STAGE_COLUMNS}) on commit drop"

# Rows whose values did not change are left alone, so a re-run writes nothing and reports it.
_UPSERT = """
with up as (
    insert into market.bars as b (symbol, ts, open, high, low, close, volume, source)
    select symbol, ts, open, high, low, close, volume, %(source)s
    from bars_stage
    on conflict (symbol, ts) do update
        set open = excluded.open, high = excluded.high, low = excluded.low,
            close = excluded.close, volume = excluded.volume, source = excluded.source
        where (b.open, b.high, b.low, b.close, b.volume, b.source)
              is distinct from
              (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
               excluded.source)
    returning {inserted} as inserted
)
select count(*) filter (where inserted), count(*) filter (where not inserted) from up
"""
# A key can only collide inside the time span a symbol is being loaded for; when no stored bar
# falls in any of those spans (the usual append of new bars), a plain INSERT is safe and skips
# the speculative-insertion cost of ON CONFLICT.
_OVERLAPS = """
select exists (
    select 1 from (select symbol, min(ts) as lo, max(ts) as hi from bars_stage group by symbol) s
    where exists (select 1 from market.bars b
                  where b.symbol = s.symbol and b.ts between s.lo and s.hi)
)
"""
_APPEND = """
insert into market.bars (symbol, ts, open, high, low, close, volume, source)
select symbol, ts, open, high, low, close, volume, %(source)s from bars_stage
"""

# Postgres 18 can return the old row; older servers count new keys before the upsert instead.
_NEW_KEYS = """
select count(*) from bars_stage s
where not exists (select 1 from market.bars b
                  where b.symbol = s.symbol and b.ts = s.ts)
"""


@dataclass(frozen=True)
class LoadResult:
    rows: int
    inserted: int
    updated: int
    partitions_created: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC, the zero of Postgres binary timestamps
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"
_VALUES = ("open", "high", "low", "close", "volume")


def binary_copy_payload(bars: pd.DataFrame) -> list[bytes]:
    """Encode bars in Postgres binary COPY format with numpy, one record array per symbol width
    and pattern of nulls (NaN: a column the source did not have, written as NULL).

    Building the bytes column-wise is several times faster than a Python loop over rows, and
    binary COPY skips text parsing on the server.
    """
    codes, uniques = pd.factorize(bars["symbol"].astype(str), sort=False)
    encoded = [u.encode("utf-8") for u in uniques]
    widths = np.array([len(e) for e in encoded])[codes]
    symbol_bytes = np.array(encoded, dtype=object)
    ts = bars["ts"].dt.tz_convert("UTC").astype("datetime64[us, UTC]").array.asi8 - PG_EPOCH_US
    values = bars[list(_VALUES)].to_numpy(np.float64)
    present = ~np.isnan(values)
    # one group per (width, nulls) pair; a null field is its length -1 and no bytes
    pattern = present @ (1 << np.arange(len(_VALUES)))
    groups = np.unique(np.c_[widths, pattern], axis=0)

    parts = [_COPY_HEADER]
    for width, bits in groups:
        rows = np.flatnonzero((widths == width) & (pattern == bits))
        kept = [i for i in range(len(_VALUES)) if bits >> i & 1]
        fields = [
            ("n", ">i2"),
            ("symbol_len", ">i4"),
            ("symbol", f"S{width}"),
            ("ts_len", ">i4"),
            ("ts", ">i8"),
        ]
        for i, name in enumerate(_VALUES):
            fields += [(f"{name}_len", ">i4")] + ([(name, ">f8")] if i in kept else [])
        record = np.empty(len(rows), dtype=np.dtype(fields))
        record["n"] = 2 + len(_VALUES)
        record["symbol_len"] = width
        record["symbol"] = symbol_bytes[codes[rows]].astype(f"S{width}")
        record["ts_len"] = 8
        record["ts"] = ts[rows]
        for i, name in enumerate(_VALUES):
            record[f"{name}_len"] = 8 if i in kept else -1
            if i in kept:
                record[name] = values[rows, i]
        parts.append(record.tobytes())
    parts.append(_COPY_TRAILER)
    return parts


def copy_bars(cur: psycopg.Cursor, bars: pd.DataFrame, table: str = "bars_stage") -> None:
    """Stream ``bars`` into the session's staging ``table`` with binary COPY."""
    with cur.copy(
        f"copy {table} (symbol, ts, open, high, low, close, volume) from stdin (format binary)"
    ) as copy:
        for part in binary_copy_payload(bars):
            copy.write(part)


def months_of(ts: pd.Series) -> list[date]:
    """The first day of each month (UTC) that ``ts`` falls in."""
    months = np.unique(
        ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[M]")
    )
    return [m.astype("datetime64[D]").item() for m in months]


def ensure_partitions(conn: psycopg.Connection, months: Iterable[date]) -> int:
    """Create the partitions of ``months`` (none for a hypertable) in their own transaction.

    Call it with no transaction open: creating a partition locks ``market.bars``, so this is
    kept short and out of the load's transaction; it is idempotent and safe to run concurrently.
    """
    with conn.transaction():
        row = conn.execute(
            "select market.ensure_bars_partitions(%s::date[])", (sorted(set(months)),)
        ).fetchone()
    return row[0]


def merge_stage(conn: psycopg.Connection, cur: psycopg.Cursor, source: str) -> tuple[int, int]:
    """Move ``bars_stage`` into ``market.bars``; returns (inserted, updated).

    Appended with a plain INSERT when no stored bar lies in the spans being loaded, else merged
    with ``INSERT ... ON CONFLICT (symbol, ts) DO UPDATE``; rows whose values did not change are
    not rewritten.
    """
    if not cur.execute(_OVERLAPS).fetchone()[0]:
        try:
            with conn.transaction():  # savepoint: a concurrent writer may still collide
                cur.execute(_APPEND, {"source": source})
                return cur.rowcount, 0
        except psycopg.errors.UniqueViolation:
            pass
    if conn.info.server_version >= 180000:
        upsert = _UPSERT.format(inserted="(old.symbol is null)")
        inserted, updated = cur.execute(upsert, {"source": source}).fetchone()
        return inserted, updated
    inserted = cur.execute(_NEW_KEYS).fetchone()[0]
    written = sum(cur.execute(_UPSERT.format(inserted="true"), {"source": source}).fetchone())
    return inserted, written - inserted


def load_bars(
    conn: psycopg.Connection,
    bars: pd.DataFrame,
    source: str,
    settings: WarehouseSettings | None = None,
) -> LoadResult:
    """Upsert validated bars in one transaction (all or nothing), after their partitions (or
    the hypertable's chunk interval), announced on ``qtis_bars`` when it commits
    (:mod:`warehouse.announce`), and refresh the rollups they changed.

    ``conn`` must have no transaction open (see :func:`ensure_partitions`); it runs in
    autocommit meanwhile (TimescaleDB refreshes aggregates outside a transaction).
    """
    if bars.empty:
        return LoadResult(0, 0, 0, 0)
    autocommit, conn.autocommit = conn.autocommit, True
    try:
        created = ensure_partitions(conn, months_of(bars["ts"]))
        spans = bars.groupby("symbol")["ts"].agg(["size", "min", "max"])
        fit_chunk_interval(
            conn, bars_per_day(spans.itertuples(index=False)), settings or WarehouseSettings()
        )
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(_STAGE)
            copy_bars(cur, bars)
            inserted, updated = merge_stage(conn, cur, source)
            first, last = spans["min"].min(), spans["max"].max()
            announce(cur, list(spans.index), first, last, len(bars), inserted, updated)
        refresh_changed(conn, bars["ts"].min(), bars["ts"].max())
    finally:
        conn.autocommit = autocommit
    return LoadResult(len(bars), inserted, updated, created)


def register_instruments(
    conn: psycopg.Connection, known: list[Instrument], symbols: list[str]
) -> None:
    """Upsert what the provider knows; add bare rows (defaults) for other new symbols."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """
            insert into market.instruments (symbol, name, sector, asset_class, currency,
                exchange_tz, tick_size, lot_size, multiplier, listed_from, delisted_at, exchange,
                initial_margin, underlying, expiry, strike, option_right, exercise_style)
            values (%(symbol)s, %(name)s, %(sector)s, %(asset_class)s, %(currency)s,
                %(exchange_tz)s, %(tick_size)s, %(lot_size)s, %(multiplier)s, %(listed_from)s,
                %(delisted_at)s, %(exchange)s, %(initial_margin)s, %(underlying)s, %(expiry)s,
                %(strike)s, %(option_right)s, %(exercise_style)s)
            on conflict (symbol) do update set
                name = excluded.name, sector = excluded.sector, asset_class = excluded.asset_class,
                currency = excluded.currency, exchange_tz = excluded.exchange_tz,
                tick_size = excluded.tick_size, lot_size = excluded.lot_size,
                multiplier = excluded.multiplier, listed_from = excluded.listed_from,
                delisted_at = excluded.delisted_at, exchange = excluded.exchange,
                initial_margin = excluded.initial_margin, underlying = excluded.underlying,
                expiry = excluded.expiry, strike = excluded.strike,
                option_right = excluded.option_right, exercise_style = excluded.exercise_style,
                updated_at = now()
            """,
            [vars(i) for i in known],
        )
        named = {i.symbol for i in known}
        cur.executemany(
            "insert into market.instruments (symbol) values (%s) on conflict do nothing",
            [(s,) for s in symbols if s not in named],
        )


def exchange_timezones(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("select symbol, exchange_tz from market.instruments").fetchall())
