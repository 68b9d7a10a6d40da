"""The provider interface: a source of raw bars plus what it knows about instruments."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol, runtime_checkable

import pandas as pd

from core.errors import InputError

# Canonical raw columns every provider returns (values may still be unparsed strings); a source
# without some of the optional ones (a close-only price panel) stores them as null.
REQUIRED_COLUMNS = ("symbol", "ts", "close")
OPTIONAL_COLUMNS = ("open", "high", "low", "volume", "adj_close")


class DataSourceError(ValueError, InputError):
    """A source that cannot be read at all (missing columns, empty, wrong format)."""


@dataclass(frozen=True)
class Instrument:
    symbol: str
    name: str | None = None
    sector: str | None = None
    asset_class: str = "equity"
    currency: str = "USD"
    exchange_tz: str = "UTC"
    tick_size: float = 0.01
    lot_size: float = 1.0
    multiplier: float = 1.0
    listed_from: date | None = None
    delisted_at: date | None = None
    exchange: str = "XNYS"  # MIC of the trading calendar (trading_runtime.calendar)
    initial_margin: float | None = None  # per contract (futures); None: the risk limit's rate
    underlying: str | None = None  # a future's root, an option's underlying symbol
    expiry: date | None = None  # derivatives: the last trading day
    strike: float | None = None  # options
    option_right: str | None = None  # "call" | "put"
    exercise_style: str | None = None  # "european" | "american"


@dataclass
class RawBars:
    """What a provider hands to validation: raw rows, their origin, known instruments."""

    frame: pd.DataFrame
    source: str
    origin: str
    instruments: list[Instrument] = field(default_factory=list)
    # The rows as the source wrote them (own headers, extra columns), aligned with ``frame``;
    # quarantine keeps these so that nothing of a bad row is lost.
    original: pd.DataFrame | None = None


class BarProvider(Protocol):
    """A source whose rows fit in memory: they are handed over at once."""

    name: str

    def load(self, symbols: Sequence[str] | None = None) -> RawBars: ...


@runtime_checkable
class ChunkedBarProvider(Protocol):
    """A source of any size (files): its rows a piece at a time, each about ``chunk_bytes`` of
    the source; an unknown symbol in ``symbols`` is an error once every piece has been read."""

    name: str

    def chunks(self, symbols: Sequence[str] | None, chunk_bytes: int) -> Iterator[RawBars]: ...


Source = BarProvider | ChunkedBarProvider


def select_symbols(frame: pd.DataFrame, symbols: Sequence[str] | None, origin: str) -> pd.DataFrame:
    """Keep only ``symbols`` (case-insensitive); an unknown symbol is an error, not silence."""
    return frame[symbol_mask(frame, symbols, origin)].reset_index(drop=True)


def symbol_mask(frame: pd.DataFrame, symbols: Sequence[str] | None, origin: str) -> pd.Series:
    if not symbols:
        return pd.Series(True, index=frame.index)
    wanted = {s.upper() for s in symbols}
    present = set(frame["symbol"].astype(str).str.upper().unique())
    missing = sorted(wanted - present)
    if missing:
        raise DataSourceError(
            f"{origin}: symbol(s) not found: {', '.join(missing)} "
            f"(available: {', '.join(sorted(present)[:20])}{' ...' if len(present) > 20 else ''})"
        )
    return frame["symbol"].astype(str).str.upper().isin(wanted)


@dataclass
class FrameProvider:
    """Bars already in memory (a slice or an edit of another source) behind the provider API."""

    raw: RawBars
    name: str = "frame"

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        return self.raw

    def where(self, keep: pd.Series) -> FrameProvider:
        """The same source restricted to the rows where ``keep`` is true."""
        frame = self.raw.frame[keep].reset_index(drop=True)
        original = None if self.raw.original is None else self.raw.original[keep]
        return FrameProvider(replace(self.raw, frame=frame, original=original), self.name)
