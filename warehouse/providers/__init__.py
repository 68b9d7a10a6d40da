"""Data providers: each returns raw bars in one canonical shape for validation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from warehouse.providers.alpaca import AlpacaProvider
from warehouse.providers.base import (
    BarProvider,
    ChunkedBarProvider,
    DataSourceError,
    Instrument,
    RawBars,
    Source,
)
from warehouse.providers.bundled import BundledProvider
from warehouse.providers.files import FileProvider
from warehouse.providers.panels import LAYOUTS, Layout
from warehouse.providers.synthetic import SyntheticMarket
from warehouse.providers.vendor import YahooProvider
from warehouse.settings import AlpacaSettings, VendorSettings

SOURCES = ("bundled", "csv", "parquet", "synthetic", "yfinance", "alpaca")

__all__ = [
    "LAYOUTS",
    "SOURCES",
    "AlpacaProvider",
    "BarProvider",
    "BundledProvider",
    "ChunkedBarProvider",
    "DataSourceError",
    "FileProvider",
    "Instrument",
    "RawBars",
    "Source",
    "SyntheticMarket",
    "YahooProvider",
    "make_provider",
]


def make_provider(
    source: str,
    path: str | Path | None = None,
    column_map: Mapping[str, str] | None = None,
    synthetic: Mapping[str, object] | None = None,
    vendor: VendorSettings | None = None,
    layout: Layout = "auto",
) -> Source:
    """Build the provider named ``source``; the one place the CLI and the asset share.
    ``layout`` (files): long, wide (a date column and one column of closes per symbol) or auto.
    ``alpaca`` backfills ``vendor.backfill_days`` of ``vendor.frequency`` bars (keys and URLs:
    ``AlpacaSettings``)."""
    if source == "bundled":
        return BundledProvider()
    if source in ("csv", "parquet"):
        if path is None:
            raise DataSourceError(f"--source {source} needs --path to a file or directory")
        return FileProvider(path, source, column_map, layout)
    if source == "synthetic":
        return SyntheticMarket(**dict(synthetic or {}))
    if source == "yfinance":
        return YahooProvider()
    if source == "alpaca":
        vendor = vendor or VendorSettings()
        return AlpacaProvider(
            AlpacaSettings(), vendor.frequency, backfill_days=vendor.backfill_days
        )
    raise DataSourceError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")
