"""A source restricted to the bars of one span of time: what a daily partition of the ingest
asks of a source (the session's bars, not the whole history).

Rows are kept by their timestamp read as UTC (a naive one as if it were UTC: a daily bar
stamped at midnight, UTC or the exchange's, and an intraday bar of a US session both fall on
their session's date). A row whose timestamp does not parse is kept, so that validation
quarantines it with its reason rather than the window dropping it unseen. A vendor provider
with a ``start``/``end`` date range (``YahooProvider``) is asked for the window only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd

from warehouse.providers.base import ChunkedBarProvider, FrameProvider, RawBars, Source


@dataclass
class Window:
    """``provider``'s rows with a timestamp in [``start``, ``end``) (UTC)."""

    provider: Source
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if hasattr(self.provider, "start") and hasattr(self.provider, "end"):
            # a vendor's range is in dates, its end exclusive: the days the window touches
            last = (self.end - timedelta(microseconds=1)).date()
            self.provider.start = self.start.date().isoformat()
            self.provider.end = (last + timedelta(days=1)).isoformat()

    @classmethod
    def day(cls, provider: Source, day: date) -> Window:
        """The bars of ``day`` (its UTC date)."""
        start = datetime.combine(day, time(), UTC)
        return cls(provider, start, start + timedelta(days=1))

    @property
    def name(self) -> str:
        return self.provider.name

    def chunks(self, symbols: Sequence[str] | None, chunk_bytes: int) -> Iterator[RawBars]:
        if isinstance(self.provider, ChunkedBarProvider):
            pieces = self.provider.chunks(symbols, chunk_bytes)
        else:
            pieces = iter([self.provider.load(symbols)])
        for raw in pieces:
            yield self._within(raw)

    def _within(self, raw: RawBars) -> RawBars:
        ts = pd.to_datetime(raw.frame["ts"], utc=True, errors="coerce", format="ISO8601")
        keep = ts.isna() | ((ts >= self.start) & (ts < self.end))
        return FrameProvider(raw).where(keep).raw
