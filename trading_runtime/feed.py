"""Bars for the engine: read once from ``market.bars`` into aligned arrays and handed out one
cross-section at a time, with the point-in-time universe applied (no bar of a symbol before it
listed or from its delisting on). A paper run paces them like a live feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from trading_runtime.broker import CrossSection
from trading_runtime.instruments import Instrument
from warehouse.reads import read_bars

FIELDS = ("open", "high", "low", "close", "volume")


class BarSource(Protocol):
    """What the engine reads bars from: stored history (:class:`BarFeed`) or bars as they
    are committed (``live_feed.LiveFeed``, whose ``times`` and ``arrays`` grow)."""

    symbols: list[str]
    times: pd.DatetimeIndex
    arrays: dict[str, np.ndarray]  # field -> (times, symbols)
    first_trading_step: int
    on_idle: Callable[[], None] | None  # called while waiting for the next bar

    def __len__(self) -> int: ...

    def replay(
        self, start: int = 0, bars_per_second: float | None = None, paced_from: int = 0
    ) -> Iterator[CrossSection]: ...


@dataclass
class BarFeed:
    symbols: list[str]
    times: pd.DatetimeIndex
    arrays: dict[str, np.ndarray]  # field -> (times, symbols)
    first_trading_step: int
    on_idle: Callable[[], None] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.times)

    def __post_init__(self) -> None:
        self._stamps = list(self.times.to_pydatetime())

    def at(self, step: int) -> CrossSection:
        a = self.arrays
        return CrossSection(
            step,
            self._stamps[step],
            a["open"][step],
            a["high"][step],
            a["low"][step],
            a["close"][step],
            a["volume"][step],
        )

    def replay(
        self, start: int = 0, bars_per_second: float | None = None, paced_from: int = 0
    ) -> Iterator[CrossSection]:
        """Cross-sections from ``start`` on, paced like a live feed from ``paced_from`` when
        ``bars_per_second`` is given (earlier bars are history: they come at once). While it
        waits, ``on_idle`` runs (an operator's command is polled then, not between a bar's
        arrival and its orders)."""
        due = time.monotonic()
        for step in range(start, len(self.times)):
            if bars_per_second and step >= paced_from:
                due += 1.0 / bars_per_second
                if self.on_idle is not None and due > time.monotonic():
                    self.on_idle()
                time.sleep(max(0.0, due - time.monotonic()))
            yield self.at(step)

    @classmethod
    def from_frame(
        cls,
        bars: pd.DataFrame,
        instruments: dict[str, Instrument],
        start: date | None = None,
        end: date | None = None,
        warmup_bars: int = 0,
    ) -> BarFeed:
        """``bars`` (symbol, ts, OHLCV) to aligned arrays, masked by listing dates."""
        if bars.empty:
            span = " and ".join(
                part for part in (start and f"on or after {start}", end and f"before {end}") if part
            )
            raise LookupError(
                f"no bars {span or 'at all'} for these symbols: ingest data (`qtis ingest`)"
                " or widen the dates"
            )
        symbols = sorted(instruments)
        wide = bars.pivot(index="ts", columns="symbol", values=list(FIELDS)).sort_index()
        if end is not None:
            wide = wide[wide.index < pd.Timestamp(end, tz=UTC)]
        wide = wide.reindex(columns=pd.MultiIndex.from_product([FIELDS, symbols]))
        first = 0 if start is None else int(wide.index.searchsorted(pd.Timestamp(start, tz=UTC)))
        if first >= len(wide):
            raise LookupError(f"no bars on or after {start}")
        wide = wide.iloc[max(0, first - warmup_bars) :]
        first = min(first, warmup_bars)
        mask = listing_mask(wide.index, [instruments[s] for s in symbols])
        arrays = {f: np.where(mask, wide[f].to_numpy(float), np.nan) for f in FIELDS}
        return cls(symbols, wide.index, arrays, first)

    @classmethod
    def from_warehouse(
        cls,
        url: str,
        instruments: dict[str, Instrument],
        start: date | None = None,
        end: date | None = None,
        warmup_bars: int = 0,
    ) -> BarFeed:
        begin = None
        if start is not None:  # enough calendar days for the warm-up bars, and some
            begin = datetime.combine(start, datetime.min.time(), UTC) - timedelta(
                days=int(warmup_bars * 1.6) + 10
            )
        stop = datetime.combine(end, datetime.min.time(), UTC) if end else None
        bars = read_bars(url, sorted(instruments), begin, stop).to_pandas()
        return cls.from_frame(bars, instruments, start, end, warmup_bars)


def listing_mask(times: pd.DatetimeIndex, instruments: list[Instrument]) -> np.ndarray:
    """(times, symbols): True where the symbol is listed on that bar's date."""
    days = times.tz_convert(UTC).tz_localize(None).normalize().to_numpy("datetime64[D]")[:, None]
    far = np.datetime64("9999-12-31")
    start = np.array([i.listed_from or np.datetime64("0001-01-01") for i in instruments], "M8[D]")
    stop = np.array([i.delisted_at or far for i in instruments], "M8[D]")
    return (days >= start) & (days < stop)
