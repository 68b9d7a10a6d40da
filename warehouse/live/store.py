"""Where a live source puts its bars: ``market.bars`` through :func:`warehouse.ingest.ingest`,
the same validation, quarantine, load and announcement as every other ingest, one batch at a
time; and what is stored already, for the backfill of a gap."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from warehouse.db import connect
from warehouse.ingest import IngestReport, ingest
from warehouse.providers.base import FrameProvider, RawBars
from warehouse.settings import WarehouseSettings

log = logging.getLogger(__name__)


@dataclass
class SourceStats:
    """What a live source has done so far (read by the service's /metrics and /healthz, and the
    tests). ``connected``: a stream is subscribed now; ``last_load_at``: wall time (epoch
    seconds) of the last load that held a bar."""

    connected: bool = False
    last_load_at: float | None = None
    connects: int = 0
    backfills: int = 0
    retry_delays: list[float] = field(default_factory=list)
    streamed: int = 0
    backfilled: int = 0
    polled: int = 0
    loads: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    errors: int = 0


class BarStore:
    """``market.bars`` of the database at ``url``, judged by ``settings``."""

    def __init__(self, url: str, settings: WarehouseSettings, stats: SourceStats) -> None:
        self.url, self.settings, self.stats = url, settings, stats

    def append(self, raw: RawBars) -> IngestReport | None:
        """Validate and load ``raw`` (bad rows to quarantine); None when it holds no row."""
        if raw.frame.empty:
            return None
        report = ingest(FrameProvider(raw, raw.source), self.url, self.settings)
        self.stats.loads += 1
        self.stats.last_load_at = time.time()
        self.stats.inserted += report.inserted
        self.stats.updated += report.updated
        self.stats.quarantined += report.quarantined
        if report.quarantined:
            log.warning(
                "%s: %d bar(s) quarantined: %s", raw.source, report.quarantined,
                report.quarantine_reasons,
            )  # fmt: skip
        return report

    def last_stored(self, symbols: Sequence[str]) -> dict[str, pd.Timestamp]:
        """The newest stored bar's time of each symbol that has one."""
        with connect(self.url) as conn:
            rows = conn.execute(
                "select symbol, max(ts) from market.bars where symbol = any(%s) group by symbol",
                (list(symbols),),
            ).fetchall()
        return {symbol: pd.Timestamp(ts) for symbol, ts in rows}
