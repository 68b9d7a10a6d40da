"""Vendors as live sources: bars appended to ``market.bars`` as they arrive, through the same
validated loader as every ingest (so each load is validated, quarantined and announced).

``run_source(open_source("alpaca", symbols), url, settings, stop)`` is what
``qtis trade live --feed alpaca|yahoo`` runs on a thread: it returns when ``stop`` is set, and
raises when bars cannot be stored (the database, not the vendor, failed) or the vendor refused
the keys. A vendor that is unreachable is retried with backoff; a gap is backfilled."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from warehouse.live.alpaca import AlpacaSource
from warehouse.live.backoff import Backoff
from warehouse.live.polling import PollingSource
from warehouse.live.store import BarStore, SourceStats
from warehouse.providers.base import DataSourceError
from warehouse.providers.vendor import YahooProvider
from warehouse.settings import AlpacaSettings, VendorSettings, WarehouseSettings

FEEDS = ("alpaca", "yahoo")
YAHOO_INTERVALS = {"1min": "1m", "1d": "1d"}

__all__ = ["FEEDS", "Backoff", "LiveSource", "SourceStats", "open_source", "run_source"]


class LiveSource(Protocol):
    name: str
    stats: SourceStats

    def run(self, store: BarStore, stop: threading.Event) -> None: ...


def open_source(
    feed: str,
    symbols: Sequence[str],
    vendor: VendorSettings | None = None,
    alpaca: AlpacaSettings | None = None,
) -> LiveSource:
    """The live source named ``feed`` (one of :data:`FEEDS`) for ``symbols``."""
    vendor = vendor or VendorSettings()
    if feed == "alpaca":
        return AlpacaSource(symbols, alpaca or AlpacaSettings(), vendor)
    if feed == "yahoo":
        provider = YahooProvider(interval=YAHOO_INTERVALS[vendor.frequency],
                                 period=vendor.yahoo_period)  # fmt: skip
        backoff = Backoff(
            vendor.backoff_initial_seconds, vendor.backoff_max_seconds, vendor.backoff_jitter
        )
        return PollingSource(provider, symbols, vendor.poll_seconds, backoff)
    raise DataSourceError(f"unknown live feed {feed!r}; choose one of: {', '.join(FEEDS)}")


def run_source(
    source: LiveSource, url: str, settings: WarehouseSettings, stop: threading.Event
) -> SourceStats:
    """Run ``source`` into the database at ``url`` until ``stop`` is set; its stats."""
    source.run(BarStore(url, settings, source.stats), stop)
    return source.stats
