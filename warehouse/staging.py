"""An ingest's staging area: session temp tables that collect a whole run chunk by chunk.

The client validates and holds one chunk at a time; the good rows and the bad ones wait in the
database (temp tables are not WAL-logged and spill to disk). A row whose ``(symbol, ts)`` an
earlier chunk already staged is a duplicate, as it would be in one batch, so a file read in
chunks is judged exactly as if it were read whole. Nothing reaches ``market.*`` before
:meth:`RunStage.publish`, one transaction: a file that fails half-way loads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from warehouse.flags import record_flags
from warehouse.loader import STAGE_COLUMNS, copy_bars, merge_stage
from warehouse.validation import DUPLICATE, ValidationResult, raw_records

# Server memory for this session: temp tables are cached in temp_buffers (8 MB by default, far
# too few for the staging table's key index, which thrashes) and the flags' window functions and
# medians sort in work_mem (4 MB by default: sorts spill to disk). Bounded, whatever the file.
_SESSION = ("set temp_buffers = '256MB'", "set work_mem = '64MB'")
_TABLES = (
    f"create temp table bars_stage ({STAGE_COLUMNS}, primary key (symbol, ts))",
    f"create temp table bars_chunk ({STAGE_COLUMNS}) on commit delete rows",
    "create temp table quarantine_stage (symbol text, ts timestamptz, raw jsonb not null, "
    "reason text not null)",
)
# Keep the chunk's new keys; return the rows whose key an earlier chunk staged (within a chunk,
# validation has already quarantined the duplicates).
_KEEP = """
with kept as (
    insert into bars_stage select * from bars_chunk on conflict (symbol, ts) do nothing
    returning symbol, ts
)
select c.symbol, c.ts from bars_chunk c
where not exists (select 1 from kept k where k.symbol = c.symbol and k.ts = c.ts)
"""
_QUARANTINE = """
insert into market.bars_quarantine (symbol, ts, raw, reason, source)
select symbol, ts, raw, reason, %s from quarantine_stage
on conflict (source, md5(raw::text), reason) do nothing
"""


@dataclass(frozen=True)
class Staged:
    """What the run staged for one symbol."""

    symbol: str
    bars: int
    first_ts: datetime
    last_ts: datetime


@dataclass(frozen=True)
class Published:
    inserted: int
    updated: int
    flags: dict[str, int]


class RunStage:
    """The temp tables of one ingest on ``conn`` (autocommit: each step is its own transaction;
    the tables live as long as the connection)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        with conn.transaction():
            for statement in _SESSION + _TABLES:
                conn.execute(statement)

    def add(self, result: ValidationResult, original: pd.DataFrame) -> ValidationResult:
        """Stage one validated chunk; returns it with duplicates of earlier chunks moved from
        ``good`` to ``quarantine``. ``original`` is the chunk's raw rows, by position."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            if len(result.good):
                copy_bars(cur, result.good, "bars_chunk")
                seen = cur.execute(_KEEP).fetchall()
                if seen:
                    result = _move_duplicates(result, seen, original)
            self._stage_quarantine(cur, result.quarantine)
        return result

    def _stage_quarantine(self, cur: psycopg.Cursor, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        with cur.copy("copy quarantine_stage (symbol, ts, raw, reason) from stdin") as copy:
            for r in rows.itertuples(index=False):
                ts = None if pd.isna(r.ts) else r.ts.to_pydatetime()
                copy.write_row((r.symbol, ts, Jsonb(r.raw), r.reason))

    def months(self) -> list[date]:
        """The months (UTC) the staged bars fall in: the partitions the load needs."""
        rows = self.conn.execute(
            "select distinct date_trunc('month', ts at time zone 'UTC')::date from bars_stage"
        ).fetchall()
        return [r[0] for r in rows]

    def summary(self) -> list[Staged]:
        """Per symbol, in Python's order of symbols (not the database collation's)."""
        rows = self.conn.execute(
            "select symbol, count(*), min(ts), max(ts) from bars_stage group by symbol"
        ).fetchall()
        return sorted(
            (Staged(s, n, lo.astimezone(UTC), hi.astimezone(UTC)) for s, n, lo, hi in rows),
            key=lambda s: s.symbol,
        )

    def publish(
        self, cur: psycopg.Cursor, source: str, spike_zscore: float, gap_factor: float
    ) -> Published:
        """Quarantine, bars and flags into ``market.*``, inside the caller's transaction."""
        cur.execute(_QUARANTINE, (source,))
        inserted, updated = merge_stage(self.conn, cur, source)
        flags = record_flags(cur, source, spike_zscore, gap_factor)
        return Published(inserted, updated, flags)


def _move_duplicates(
    result: ValidationResult, seen: list[tuple[str, datetime]], original: pd.DataFrame
) -> ValidationResult:
    keys = pd.DataFrame(seen, columns=["symbol", "ts"])
    keys["ts"] = pd.to_datetime(keys["ts"], utc=True).astype("datetime64[ns, UTC]")
    rows = result.good.reset_index(names="row").merge(keys, on=["symbol", "ts"])["row"]
    duplicates = pd.DataFrame(
        {
            "symbol": result.good.loc[rows, "symbol"].reset_index(drop=True),
            "ts": result.good.loc[rows, "ts"].reset_index(drop=True),
            "raw": raw_records(original.loc[rows]),
            "reason": DUPLICATE,
        }
    )
    quarantine = pd.concat([result.quarantine, duplicates], ignore_index=True)
    return ValidationResult(result.good.drop(index=rows), quarantine)
