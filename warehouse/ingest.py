"""Ingestion: provider -> validation -> quarantine + flags + bulk load, recorded as a run.

The CLI (`qtis ingest`) and the Dagster asset (`raw_bars`) both call :func:`ingest`, so they
cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import psycopg

from warehouse.announce import announce
from warehouse.db import connect
from warehouse.loader import ensure_partitions, exchange_timezones, register_instruments
from warehouse.providers.base import ChunkedBarProvider, Instrument, RawBars, Source
from warehouse.rollups import ensure_zones, refresh_changed
from warehouse.settings import WarehouseSettings
from warehouse.staging import RunStage, Staged
from warehouse.timescale import bars_per_day, fit_chunk_interval
from warehouse.validation import TimeWindow, validate_bars

Progress = Callable[[str], None]


@dataclass
class IngestReport:
    source: str
    origin: str
    symbols: list[str]
    rows_in: int
    loaded: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    quarantine_reasons: dict[str, int]
    flags: dict[str, int]
    first_ts: str | None
    last_ts: str | None
    bars_per_symbol: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None

    @property
    def quarantine_ratio(self) -> float:
        return self.quarantined / self.rows_in if self.rows_in else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"quarantine_ratio": round(self.quarantine_ratio, 6)}


@dataclass
class _Read:
    """What the chunks of one run held, beyond what was staged."""

    source: str
    origin: str
    rows_in: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    instruments: list[Instrument] = field(default_factory=list)


def pieces(provider: Source, symbols: Sequence[str] | None, chunk_bytes: int) -> Iterator[RawBars]:
    """What ``provider`` offers, a piece at a time (one piece unless it reads in chunks)."""
    if isinstance(provider, ChunkedBarProvider):
        return provider.chunks(symbols, chunk_bytes)
    return iter([provider.load(symbols)])


def _stage_all(
    provider: Source,
    stage: RunStage,
    zones: dict[str, str],
    settings: WarehouseSettings,
    symbols: Sequence[str] | None,
    step: Progress,
) -> _Read:
    """Validate and stage every chunk the provider hands over, one at a time."""
    read = _Read(source=provider.name, origin=provider.name)
    window = TimeWindow.of(settings)
    for raw in pieces(provider, symbols, settings.ingest_chunk_bytes):
        read.source, read.origin = raw.source, raw.origin
        read.instruments += raw.instruments
        zones |= {i.symbol: i.exchange_tz for i in raw.instruments}
        original = (raw.frame if raw.original is None else raw.original).reset_index(drop=True)
        result = validate_bars(raw.frame, zones, original=original, window=window)
        result = stage.add(result, original)
        read.rows_in += len(raw.frame)
        read.quarantined += len(result.quarantine)
        read.reasons.update(result.reasons)
        step(f"validated {read.rows_in:,} rows ({read.quarantined:,} quarantined)")
        del raw, original, result  # hold no chunk while the next one is read
    return read


def ingest(
    provider: Source,
    url: str,
    settings: WarehouseSettings,
    symbols: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Load what ``provider`` offers into ``market.bars``; bad rows go to quarantine, judged by
    ``settings`` (built by the entry point).

    Rows are read and validated a chunk at a time (``QTIS_INGEST_CHUNK_BYTES`` of a file) and
    staged in the database; then the partitions of the months that have rows are created, in
    their own transaction, and everything is published in one transaction, announced on
    ``qtis_bars`` when it commits (:mod:`warehouse.announce`; a run that changed no row
    announces nothing).
    """
    step = progress or (lambda _msg: None)
    started = datetime.now(UTC)
    step(f"reading {provider.name}")
    with connect(url, autocommit=True) as conn:
        stage = RunStage(conn)
        zones = exchange_timezones(conn)
        read = _stage_all(provider, stage, zones, settings, symbols, step)
        staged = stage.summary()
        step(f"creating partitions, loading {sum(s.bars for s in staged):,} rows")
        ensure_partitions(conn, stage.months())
        rate = bars_per_day((s.bars, s.first_ts, s.last_ts) for s in staged)
        fit_chunk_interval(conn, rate, settings)
        with conn.transaction(), conn.cursor() as cur:
            register_instruments(conn, read.instruments, [s.symbol for s in staged])
            out = stage.publish(cur, read.source, settings.spike_zscore, settings.gap_factor)
            loaded = sum(s.bars for s in staged)
            report = IngestReport(
                source=read.source,
                origin=read.origin,
                symbols=[s.symbol for s in staged],
                rows_in=read.rows_in,
                loaded=loaded,
                inserted=out.inserted,
                updated=out.updated,
                unchanged=loaded - out.inserted - out.updated,
                quarantined=read.quarantined,
                quarantine_reasons=dict(sorted(read.reasons.items())),
                flags=out.flags,
                first_ts=staged_span(staged)[0].isoformat() if staged else None,
                last_ts=staged_span(staged)[1].isoformat() if staged else None,
                bars_per_symbol={s.symbol: s.bars for s in staged},
            )
            report.run_id = _record_run(cur, report, started)
            if staged:  # delivered when this transaction commits
                first, last = staged_span(staged)
                announce(cur, report.symbols, first, last, loaded, out.inserted, out.updated)
        if staged:
            ensure_zones(conn, {zones.get(s.symbol, "UTC") for s in staged}, settings)
            refresh_changed(conn, *staged_span(staged))
    return report


def staged_span(staged: list[Staged]) -> tuple[datetime, datetime]:
    """The first and last bar time of a non-empty staged run."""
    return min(s.first_ts for s in staged), max(s.last_ts for s in staged)


def _record_run(cur: psycopg.Cursor, report: IngestReport, started: datetime) -> int:
    return cur.execute(
        """
        insert into market.ingest_runs (source, origin, symbols, rows_in, loaded, inserted,
            updated, unchanged, quarantined, flagged, first_ts, last_ts, started_at)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id
        """,
        (
            report.source,
            report.origin,
            report.symbols,
            report.rows_in,
            report.loaded,
            report.inserted,
            report.updated,
            report.unchanged,
            report.quarantined,
            sum(report.flags.values()),
            report.first_ts,
            report.last_ts,
            started,
        ),
    ).fetchone()[0]
