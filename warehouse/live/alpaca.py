"""Alpaca's bars as they arrive: alpaca-py's ``StockDataStream`` on a thread, each batch of
streamed bars loaded through :class:`~warehouse.live.store.BarStore`, and the gap since the
last stored bar of each symbol backfilled over REST at start and after every reconnect.

alpaca-py reconnects by itself; this adapter gives it our backoff (exponential, capped,
jittered: :class:`~warehouse.live.backoff.Backoff`) and learns of each new connection from the
server's subscription acknowledgement. The backfill runs after that acknowledgement, so every
bar is either streamed (published after the subscription) or already served by REST (published
before the request): nothing falls between. Overlaps load as unchanged rows."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream

from warehouse.live.backoff import Backoff
from warehouse.live.store import BarStore, SourceStats
from warehouse.providers.alpaca import AlpacaProvider, VendorUnavailable, alpaca_bars
from warehouse.settings import AlpacaSettings, VendorSettings

log = logging.getLogger(__name__)
_BACKFILL = object()  # queued when a (re)connection's subscription is acknowledged


class _BarStream(StockDataStream):
    """alpaca-py's stream with our backoff and a hook on each acknowledged subscription."""

    def __init__(self, settings: AlpacaSettings, backoff: Backoff, inbox: queue.Queue,
                 stats: SourceStats) -> None:  # fmt: skip
        key, secret = settings.credentials()
        super().__init__(
            key,
            secret,
            raw_data=True,
            feed=DataFeed(settings.data_feed),
            url_override=settings.data_stream_url,
        )
        self._backoff, self._inbox, self._stats = backoff, inbox, stats

    def _reconnect_delay(self, retries: int) -> float:
        delay = self._backoff.delay(retries)
        self._stats.retry_delays.append(delay)
        log.warning("alpaca data stream: retry %d in %.2f s", retries, delay)
        return delay

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("T") == "subscription":
            self._stats.connects += 1
            self._inbox.put(_BACKFILL)
        await super()._dispatch(msg)

    def halt(self) -> None:
        """Stop from another thread at once (alpaca-py's ``stop`` waits for a receive to time
        out): ask the loop to stop, then close the socket under it."""
        loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._halt(), loop).result(timeout=10)

    async def _halt(self) -> None:
        await self.stop_ws()
        await self.close()


class AlpacaSource:
    """A live source of Alpaca bars for ``symbols`` (see the module docstring)."""

    name = "alpaca"

    def __init__(
        self,
        symbols: Sequence[str],
        alpaca: AlpacaSettings,
        vendor: VendorSettings,
        backoff: Backoff | None = None,
    ) -> None:
        self.symbols = sorted({s.upper() for s in symbols})
        if not self.symbols:
            raise ValueError("an Alpaca source needs symbols")
        self.alpaca, self.vendor = alpaca, vendor
        self.backoff = backoff or Backoff(
            vendor.backoff_initial_seconds, vendor.backoff_max_seconds, vendor.backoff_jitter
        )
        self.rest = AlpacaProvider(alpaca, vendor.frequency)
        self.stats = SourceStats()
        self._inbox: queue.Queue = queue.Queue()

    def run(self, store: BarStore, stop: threading.Event) -> None:
        """Backfill, then stream until ``stop`` is set. A refused key fails here, at once."""
        self.backfill(store)
        stream = _BarStream(self.alpaca, self.backoff, self._inbox, self.stats)
        subscribe = stream.subscribe_bars if self.vendor.frequency == "1min" else (
            stream.subscribe_daily_bars
        )  # fmt: skip
        subscribe(self._on_bar, *self.symbols)
        thread = threading.Thread(target=stream.run, name="alpaca-data-stream", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                self._drain(store, stop)
        finally:
            stream.halt()
            thread.join(timeout=15)

    async def _on_bar(self, message: dict[str, Any]) -> None:
        self._inbox.put(message)

    def _drain(self, store: BarStore, stop: threading.Event) -> None:
        """Wait for what arrived, gather what follows within ``batch_seconds``, load it."""
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return
        items, until = [first], time.monotonic() + self.vendor.batch_seconds
        while (left := until - time.monotonic()) > 0:
            try:
                items.append(self._inbox.get(timeout=left))
            except queue.Empty:
                break
        bars = [item for item in items if item is not _BACKFILL]
        if bars:
            self.stats.streamed += len(bars)
            store.append(alpaca_bars(bars, f"alpaca stream {self.alpaca.data_stream_url or ''}"))
        if len(bars) < len(items):
            self._backfill_until_done(store, stop)

    def backfill(self, store: BarStore) -> int:
        """Load each symbol's bars after its last stored one (``backfill_days`` back for a
        symbol with none); returns the number of bars the vendor sent."""
        stored = store.last_stored(self.symbols)
        default = datetime.now(UTC) - timedelta(days=self.vendor.backfill_days)
        starts = {s: stored[s].to_pydatetime() if s in stored else default for s in self.symbols}
        raw = self.rest.since(starts)
        store.append(raw)
        self.stats.backfilled += len(raw.frame)
        log.info("alpaca backfill: %d bar(s) for %d symbol(s)", len(raw.frame), len(starts))
        return len(raw.frame)

    def _backfill_until_done(self, store: BarStore, stop: threading.Event) -> None:
        """A backfill after a reconnect, retried with backoff while the vendor is unreachable
        (streamed bars wait in the queue meanwhile)."""
        attempt = 0
        while not stop.is_set():
            try:
                self.backfill(store)
                return
            except VendorUnavailable as exc:
                attempt += 1
                self.stats.errors += 1
                delay = self.backoff.delay(attempt)
                log.warning("alpaca backfill failed (%s); retry in %.2f s", exc, delay)
                stop.wait(delay)
