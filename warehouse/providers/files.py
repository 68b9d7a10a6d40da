"""User files: CSV and Parquet with common headers recognised out of the box, long (a row per
symbol and bar) or wide (a date column and one column of closes per symbol,
:mod:`warehouse.providers.panels`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from warehouse.providers.base import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    DataSourceError,
    RawBars,
)
from warehouse.providers.chunks import csv_chunks, parquet_chunks
from warehouse.providers.panels import LAYOUTS, Layout, wide_to_long

# Normalised header (lower case, non-alphanumerics removed) -> canonical column.
HEADER_ALIASES = {
    "symbol": "symbol",
    "ticker": "symbol",
    "instrument": "symbol",
    "date": "ts",
    "datetime": "ts",
    "timestamp": "ts",
    "ts": "ts",
    "time": "ts",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "vol": "volume",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "adjusted": "adj_close",
}


def _normalise(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).lower())


def _renames(
    frame: pd.DataFrame, origin: str, column_map: Mapping[str, str] | None
) -> dict[str, str]:
    """File header -> canonical column, for the headers that have one."""
    explicit = {_normalise(k): v for k, v in (column_map or {}).items()}
    unknown = set(explicit.values()) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise DataSourceError(
            f"{origin}: column mapping targets unknown column(s) {sorted(unknown)}; "
            f"valid targets: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    renames: dict[str, str] = {}
    for header in frame.columns:
        key = _normalise(header)
        target = explicit.get(key) or HEADER_ALIASES.get(key)
        if target and target not in renames.values():
            renames[header] = target
    return renames


def _is_wide(renames: dict[str, str]) -> bool:
    """Auto layout: a date column and no symbol or price header (every other header a symbol)."""
    return "ts" in renames.values() and not set(renames.values()) - {"ts"}


def standardize_columns(
    frame: pd.DataFrame,
    origin: str,
    column_map: Mapping[str, str] | None = None,
    default_symbol: str | None = None,
    layout: Layout = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(canonical columns, the rows as the file wrote them); fail naming the file if a required
    column is missing.

    ``column_map`` maps a file header to a canonical name (``{"Px_Last": "close"}``) and wins over
    the built-in aliases. Long files need ``symbol`` (without one, ``default_symbol``: the file
    stem), ``ts`` and ``close``; open, high, low and volume are stored where the file has them.
    A wide file (``layout``, or ``auto`` and no header but the date is a known column) becomes
    one close per non-empty cell.
    """
    renames = _renames(frame, origin, column_map)
    if layout == "wide" or (layout == "auto" and _is_wide(renames)):
        ts = [h for h, target in renames.items() if target == "ts"]
        if not ts:
            raise DataSourceError(
                f"{origin}: a wide file needs a date column (Date, Datetime, Timestamp, ts or "
                f"time; found: {', '.join(map(str, frame.columns)) or 'none'}); map yours "
                "with --map HEADER=ts"
            )
        return wide_to_long(frame, ts[0], origin)
    out = frame.rename(columns=renames)[list(renames.values())]
    if "symbol" not in out.columns and default_symbol:
        out.insert(0, "symbol", default_symbol)
    missing = [c for c in REQUIRED_COLUMNS if c not in out.columns]
    if missing:
        raise DataSourceError(
            f"{origin}: missing required column(s): {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns)) or 'none'}); a long file needs "
            "symbol (or the file name), ts and close, a wide one a date column and one column "
            "per symbol; map other headers with --map HEADER=COLUMN"
        )
    return out, frame


class FileProvider:
    """Bars from a CSV/Parquet file, or every such file in a directory (one symbol per file ok),
    in ``layout`` long, wide or auto (wide when the only known header is the date)."""

    def __init__(
        self,
        path: str | Path,
        kind: str,
        column_map: Mapping[str, str] | None = None,
        layout: Layout = "auto",
    ):
        if kind not in ("csv", "parquet"):
            raise ValueError(f"file kind must be csv or parquet, got {kind!r}")
        if layout not in LAYOUTS:
            raise DataSourceError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.path = Path(path)
        self.kind = kind
        self.name = kind
        self.column_map = dict(column_map or {})
        self.layout = layout

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            suffixes = (".csv", ".csv.gz") if self.kind == "csv" else (".parquet", ".pq")
            files = sorted(p for p in self.path.iterdir() if p.name.lower().endswith(suffixes))
            if not files:
                raise DataSourceError(f"{self.path}: no {self.kind} files in this directory")
            return files
        return [self.path]

    def _piece(self, raw: pd.DataFrame, file: Path, wanted: set[str], found: set[str]) -> RawBars:
        """One chunk of ``file`` in canonical columns, only ``wanted`` symbols (when given; those
        seen are added to ``found``)."""
        stem = file.name.split(".")[0].upper()
        frame, original = standardize_columns(
            raw, str(file), self.column_map, default_symbol=stem, layout=self.layout
        )
        original = original.assign(_file=str(file))
        if wanted:
            upper = frame["symbol"].astype(str).str.upper()
            keep = upper.isin(wanted)
            found |= set(upper[keep].unique())
            frame, original = frame[keep], original[keep]
        return RawBars(
            frame.reset_index(drop=True),
            self.name,
            str(self.path),
            original=original.reset_index(drop=True),
        )

    def chunks(self, symbols: Sequence[str] | None, chunk_bytes: int) -> Iterator[RawBars]:
        """The rows of every file, about ``chunk_bytes`` of the file at a time (see
        :mod:`warehouse.providers.chunks`), restricted to ``symbols`` (case-insensitive)."""
        wanted = {s.upper() for s in symbols or ()}
        found: set[str] = set()
        for file in self._files():
            if not file.exists():
                raise DataSourceError(f"{file}: file not found")
            reader = csv_chunks if self.kind == "csv" else parquet_chunks
            rows = 0
            for raw in reader(file, chunk_bytes):
                piece = self._piece(raw, file, wanted, found)
                rows += len(piece.frame)
                del raw
                yield piece
                del piece  # hold no chunk while the next one is read
            if rows == 0:
                raise DataSourceError(f"{file}: the file has a header but no rows")
        if wanted - found:
            raise DataSourceError(
                f"{self.path}: symbol(s) not found: {', '.join(sorted(wanted - found))}"
            )
