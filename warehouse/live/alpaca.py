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

import pandas as pd
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream

from warehouse.live.backoff import Backoff
from warehouse.live.store import BarStore, SourceStats
from warehouse.providers.alpaca import AlpacaProvider, VendorUnavailable, alpaca_bars
from warehouse.providers.base import DataSourceError, RawBars
from warehouse.settings import AlpacaSettings, VendorSettings

log = logging.getLogger(__name__)
_BACKFILL = object()  # queued when a (re)connection's subscription is acknowledged
# websockets logs the first and last bytes of every frame at DEBUG, and the auth frame ends
# with the secret key: the stream's socket gets a logger that never logs frames
_QUIET_LOG = logging.getLogger(f"{__name__}.socket")
_QUIET_LOG.setLevel(logging.INFO)
# alpaca-py's own socket settings, which a ``websocket_params`` replaces as a whole
QUIET_SOCKET = {"ping_interval": 10, "ping_timeout": 180, "max_queue": 1024, "logger": _QUIET_LOG}


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
            websocket_params=QUIET_SOCKET,
        )
        self._backoff, self._inbox, self._stats = backoff, inbox, stats

    def _reconnect_delay(self, retries: int) -> float:
        delay = self._backoff.delay(retries)
        self._stats.connected = False
        self._stats.retry_delays.append(delay)
        log.warning("alpaca data stream: retry %d in %.2f s", retries, delay)
        return delay

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("T") == "subscription":
            self._stats.connects += 1
            self._stats.connected = True
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
            raise DataSourceError("alpaca: a live source needs symbols")
        self.alpaca, self.vendor = alpaca, vendor
        self.backoff = backoff or Backoff(
            vendor.backoff_initial_seconds, vendor.backoff_max_seconds, vendor.backoff_jitter
        )
        self.rest = AlpacaProvider(alpaca, vendor.frequency)
        self.stats = SourceStats()
        self._inbox: queue.Queue = queue.Queue()
        self._seen: dict[str, pd.Timestamp] = {}  # newest bar received, by symbol

    def run(self, store: BarStore, stop: threading.Event) -> None:
        """Backfill, then stream until ``stop`` is set. A refused key fails here, at once; an
        unreachable vendor is retried."""
        self._backfill_until_done(store, stop)
        if stop.is_set():
            return
        stream = _BarStream(self.alpaca, self.backoff, self._inbox, self.stats)
        subscribe = stream.subscribe_bars if self.vendor.frequency == "1min" else (
            stream.subscribe_daily_bars
        )  # fmt: skip
        subscribe(self._on_bar, *self.symbols)
        thread = threading.Thread(target=stream.run, name="alpaca-data-stream", daemon=True)
        thread.start()
        while stream._loop is None and thread.is_alive():  # until ``halt`` can reach it
            time.sleep(0.01)
        try:
            while not stop.is_set():
                if not thread.is_alive():  # alpaca-py gives up on some errors (a feed not paid for)
                    raise VendorUnavailable("alpaca: the data stream ended; see the log above")
                self._drain(store, stop)
        finally:
            stream.halt()
            thread.join(timeout=15)
            self.stats.connected = False

    async def _on_bar(self, message: dict[str, Any]) -> None:
        self._inbox.put(message)

    def _drain(self, store: BarStore, stop: threading.Event) -> None:
        """Wait for what arrived, gather what follows within ``batch_seconds`` and load it in
        order: the bars streamed before a reconnect, the backfill, the bars streamed after."""
        try:
            items = [self._inbox.get(timeout=0.1)]
        except queue.Empty:
            return
        until = time.monotonic() + self.vendor.batch_seconds
        while (left := until - time.monotonic()) > 0:
            try:
                items.append(self._inbox.get(timeout=left))
            except queue.Empty:
                break
        bars: list[dict[str, Any]] = []
        for item in items:
            if item is _BACKFILL:
                self._flush(store, bars)
                bars = []
                self._backfill_until_done(store, stop)
            else:
                bars.append(item)
        self._flush(store, bars)

    def _flush(self, store: BarStore, bars: list[dict[str, Any]]) -> None:
        if bars:
            self.stats.streamed += len(bars)
            self._append(store, alpaca_bars(bars, f"alpaca stream {self.alpaca.data_stream_url}"))

    def _append(self, store: BarStore, raw: RawBars) -> None:
        """Load ``raw`` and remember the newest bar of each symbol it held, quarantined or not:
        a backfill starts after it (a bad bar is not asked for again)."""
        store.append(raw)
        ts = pd.to_datetime(raw.frame["ts"], utc=True, errors="coerce", format="ISO8601")
        newest = ts.groupby(raw.frame["symbol"].astype(str)).max().dropna()
        for symbol, when in newest.items():
            if symbol in self._seen and self._seen[symbol] >= when:
                continue
            self._seen[symbol] = when

    def backfill(self, store: BarStore) -> int:
        """Load each symbol's bars after the last one stored or received (``backfill_days``
        back for a symbol with neither); returns the number of bars the vendor sent."""
        known = store.last_stored(self.symbols)
        for symbol, when in self._seen.items():
            known[symbol] = max(known.get(symbol, when), when)
        default = datetime.now(UTC) - timedelta(days=self.vendor.backfill_days)
        starts = {s: known[s].to_pydatetime() if s in known else default for s in self.symbols}
        raw = self.rest.since(starts)
        self._append(store, raw)
        self.stats.backfilled += len(raw.frame)
        self.stats.backfills += 1
        log.info("alpaca backfill: %d bar(s) for %d symbol(s)", len(raw.frame), len(starts))
        return len(raw.frame)

    def _backfill_until_done(self, store: BarStore, stop: threading.Event) -> None:
        """A backfill, retried with backoff while the vendor is unreachable (after a reconnect,
        streamed bars wait in the queue meanwhile)."""
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
