"""A live trading session (`qtis trade live`): the engine on bars as they are committed to
``market.bars``, trading through a broker, until it is stopped.

What runs, in one process: the vendor's stream writing bars into the warehouse (``--feed
alpaca|yahoo``; with ``warehouse`` another process loads them), the live feed handing the
engine each complete cross-section, the engine (journal first, then orders), the broker
adapter, reconciliation at start, after reconnects and every few minutes, and ``/metrics`` +
``/healthz`` on a local port. ``stop`` (SIGTERM) ends it between bars: the bar in progress is
finished and journaled, the open orders cancelled or kept (QTIS_LIVE_CANCEL_ON_STOP), the
broker disconnected. A restart with the same stream resumes from the journal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from trading_runtime import events as ev
from trading_runtime.alpaca.execution import AlpacaExecution
from trading_runtime.analytics.conventions import conventions
from trading_runtime.config import RunConfig
from trading_runtime.execution import Execution
from trading_runtime.feed import BarSource
from trading_runtime.health import HealthServer
from trading_runtime.instruments import Instrument, load_instruments
from trading_runtime.live_feed import LiveFeed
from trading_runtime.live_status import LiveStatus
from trading_runtime.reconcile import Reconciler
from trading_runtime.runs import RunReport, StreamBusy, build_engine, fix_execution, report
from trading_runtime.settings import FixSettings, LiveSettings, RuntimeSettings
from trading_runtime.telemetry import EventObserver, RuntimeMetrics
from warehouse.db import connect
from warehouse.live import SourceStats, open_source, run_source
from warehouse.settings import AlpacaSettings, VendorSettings, WarehouseSettings

log = logging.getLogger(__name__)
FEEDS = ("warehouse", "alpaca", "yahoo")
BROKERS = {"sim": "simulated", "alpaca": "alpaca", "fix": "fix"}  # --broker -> execution


@dataclass(frozen=True)
class LiveParts:
    """The settings a live session is built from (each built once, at the entry point)."""

    live: LiveSettings
    runtime: RuntimeSettings
    serving: ServingSettings
    fix: FixSettings
    alpaca: AlpacaSettings
    vendor: VendorSettings
    warehouse: WarehouseSettings
    tracking: TrackingSettings


def first_live_day(url: str, symbols: Sequence[str] | None) -> date:
    """A new live stream trades from the day after the newest stored bar of its universe:
    what is stored is history (the features' warm-up), what comes is traded."""
    query = "select max(ts) from market.bars"
    params: tuple = ()
    if symbols:
        query += " where symbol = any(%s)"
        params = (list(symbols),)
    with connect(url) as conn:
        newest = conn.execute(query, params).fetchone()[0]
    if newest is None:
        raise LookupError("no bars stored: ingest history first (`qtis ingest`)")
    return newest.date() + timedelta(days=1)


def run_live(
    url: str,
    config: RunConfig,
    feed: str,
    parts: LiveParts,
    stop: threading.Event,
    venue_log: Path | None = None,
    observers: Sequence[EventObserver] = (),
    on_ready: Callable[[HealthServer], None] | None = None,
    health_open: bool = False,
) -> RunReport:
    """Trade ``config`` (mode live) on bars from ``feed`` until ``stop`` is set; then its
    report, read back from the journal (a resumed stream's whole life)."""
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}: one of {', '.join(FEEDS)}")
    status = LiveStatus(config.stream)
    metrics = RuntimeMetrics(config.stream)
    relay = _Relay()
    failed: list[BaseException] = []
    with ExitStack() as resources:
        if feed != "warehouse":
            symbols = sorted(load_instruments(url, config.symbols))
            failed, stats = resources.enter_context(vendor_stream(feed, url, symbols, parts, stop))
            status.source = stats
        engine = build_engine(
            url, config, parts.runtime, parts.serving, parts.fix, venue_log, None, resources,
            [status, metrics, *observers], tracking=parts.tracking,
            feed_source=partial(
                live_bars, settings=parts.live, stop=stop, relay=relay, resources=resources
            ),
            execution_source=partial(broker_execution, alpaca=parts.alpaca, fix=parts.fix),
            cancel_on_stop=parts.live.cancel_on_stop,
        )  # fmt: skip
        broker = engine.router.broker
        if isinstance(broker, AlpacaExecution):
            engine.reconciler = Reconciler.from_settings(broker.broker_state, parts.live)
            broker.on_reconnect = engine.reconciler.reconnected
            status.connected = broker.is_connected
        journal = engine.journal
        resources.callback(journal.close)
        if not journal.acquire():
            raise StreamBusy(f"an engine is already running stream {config.stream!r}")
        relay.attach(engine.record)
        live = parts.live
        health = HealthServer(
            metrics.registry, status.health, live.health_host, live.health_port, health_open
        )
        resources.enter_context(health)
        if on_ready is not None:
            on_ready(health)
        engine.run()
    if failed:
        raise ConnectionError(f"the {feed} feed failed: {failed[0]}") from failed[0]
    periods = conventions(periods_per_year=parts.runtime.bars_per_year)
    return report(url, config.stream, periods)


class _Relay:
    """The feed's notices, passed on to the engine once it exists (the engine is built with
    its feed, and journals what the feed reports)."""

    def __init__(self) -> None:
        self.target: Callable[[ev.Event], None] | None = None
        self.early: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        if self.target is None:
            self.early.append(event)
        else:
            self.target(event)

    def attach(self, target: Callable[[ev.Event], None]) -> None:
        self.target = target
        for event in self.early:
            target(event)
        self.early = []


def live_bars(
    url: str,
    instruments: dict[str, Instrument],
    config: RunConfig,
    *,
    settings: LiveSettings,
    stop: threading.Event,
    relay: _Relay,
    resources: ExitStack,
) -> LiveFeed:
    """The live feed of ``config``'s universe: its stored history, then bars as they come."""
    feed = LiveFeed(url, instruments, settings, stop, relay, config.start, config.warmup_bars)
    resources.callback(feed.close)
    return feed


def broker_execution(
    config: RunConfig,
    instruments: dict[str, Instrument],
    feed: BarSource,
    *,
    alpaca: AlpacaSettings,
    fix: FixSettings,
) -> AbstractContextManager[Execution]:
    """The broker of a live session: Alpaca's trading API, or a FIX 4.4 venue."""
    if config.execution == "alpaca":
        return AlpacaExecution(instruments, config.cost_model(), alpaca)
    return fix_execution(config, instruments, feed, fix)


@contextmanager
def vendor_stream(
    feed: str, url: str, symbols: Sequence[str], parts: LiveParts, stop: threading.Event
) -> Iterator[tuple[list[BaseException], SourceStats]]:
    """The vendor's bars written into the warehouse on a thread while the session runs, and
    what it has done (``/healthz``). A source that fails for good (refused keys, a database
    that cannot store) stops the session: its error is in the yielded list."""
    source = open_source(feed, symbols, parts.vendor, parts.alpaca)
    failed: list[BaseException] = []

    def pump() -> None:
        try:
            run_source(source, url, parts.warehouse, stop)
        except Exception as exc:  # the session stops, and reports it
            failed.append(exc)
            log.error("the %s feed stopped: %s", feed, exc)
            stop.set()

    thread = threading.Thread(target=pump, name=f"qtis-{feed}-feed", daemon=True)
    thread.start()
    try:
        yield failed, source.stats
    finally:
        stop.set()
        thread.join(30)
