"""Ingestion: provider -> validation -> quarantine + flags + bulk load, recorded as a run.

The CLI (`qtis ingest`) and the Dagster asset (`raw_bars`) both call :func:`ingest`, so they
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from warehouse.db import connect
from warehouse.loader import (
    exchange_timezones,
    load_bars,
    quarantine_rows,
    record_flags,
    register_instruments,
)
from warehouse.providers.base import BarProvider
from warehouse.settings import WarehouseSettings
from warehouse.validation import validate_bars

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


def ingest(
    provider: BarProvider,
    url: str,
    settings: WarehouseSettings,
    symbols: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Load what ``provider`` offers into ``market.bars``; bad rows go to quarantine, judged by
    ``settings`` (built by the entry point)."""
    step = progress or (lambda _msg: None)
    started = datetime.now(UTC)

    step(f"reading {provider.name}")
    raw = provider.load(symbols)
    with connect(url) as conn:
        zones = exchange_timezones(conn) | {i.symbol: i.exchange_tz for i in raw.instruments}
        step(f"validating {len(raw.frame):,} rows")
        result = validate_bars(
            raw.frame, zones, settings.spike_zscore, settings.gap_factor, original=raw.original
        )
        loaded_symbols = sorted(result.good["symbol"].unique())

        step(f"quarantining {len(result.quarantine):,} rows")
        quarantine_rows(conn, result.quarantine, raw.source)
        register_instruments(conn, raw.instruments, loaded_symbols)
        step(f"loading {len(result.good):,} rows")
        loaded = load_bars(conn, result.good, raw.source)
        record_flags(conn, result.flags, raw.source)

        good = result.good
        report = IngestReport(
            source=raw.source,
            origin=raw.origin,
            symbols=loaded_symbols,
            rows_in=len(raw.frame),
            loaded=loaded.rows,
            inserted=loaded.inserted,
            updated=loaded.updated,
            unchanged=loaded.unchanged,
            quarantined=len(result.quarantine),
            quarantine_reasons=result.reasons,
            flags={k: int(v) for k, v in result.flags["flag"].value_counts().items()},
            first_ts=good["ts"].min().isoformat() if len(good) else None,
            last_ts=good["ts"].max().isoformat() if len(good) else None,
            bars_per_symbol={
                k: int(v) for k, v in good["symbol"].value_counts().sort_index().items()
            },
        )
        report.run_id = conn.execute(
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
        conn.commit()
    return report
