"""Backtest and paper runs: the engine wired to the warehouse, the model and the journal, and
what a run reports afterwards (metrics, every fill, the equity curve, tick-to-order latency) -
all read back from the journal, so a resumed paper run reports its whole life."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from quant.conventions import Conventions
from registry.settings import TrackingSettings
from serving.client import ServingClient
from serving.errors import NoChampion
from serving.predictor import Predicting, Predictor
from serving.settings import ServingSettings
from trading_runtime import events as ev
from trading_runtime.analytics.conventions import conventions as analytics_conventions
from trading_runtime.book import Book
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.engine import Engine, rebuild
from trading_runtime.execution import Execution
from trading_runtime.feed import BarFeed, BarSource
from trading_runtime.fix.gateway import FixGateway
from trading_runtime.fix.venue import FixVenue
from trading_runtime.instruments import Instrument, load_instruments
from trading_runtime.journal import Journal
from trading_runtime.metrics import summary
from trading_runtime.settings import FixSettings, RuntimeSettings
from trading_runtime.signals import model_card
from trading_runtime.telemetry import EventObserver
from transforms.online import OnlineFeatureEngine

# the bars a run trades, and the venue its orders go to (a context: it is closed at the end)
FeedSource = Callable[[str, dict[str, Instrument], RunConfig], BarSource]
ExecutionSource = Callable[
    [RunConfig, dict[str, Instrument], BarSource], AbstractContextManager[Execution]
]


class StreamBusy(RuntimeError, InputError):
    """Another engine is running this stream."""


@dataclass
class RunReport:
    stream: str
    book: Book
    metrics: dict[str, Any]
    fills: list[dict[str, Any]]
    equity_curve: list[dict[str, Any]]
    latency_us: dict[str, float]
    denials: dict[str, int]
    # the first denial's reason per check (with its numbers): why a check denied, by example
    denial_examples: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "config": self.book.config,
            "metrics": self.metrics,
            "fills": self.fills,
            "equity_curve": self.equity_curve,
            "tick_to_order_us": self.latency_us,
            "denials": self.denials,
            "denial_examples": self.denial_examples,
        }


def build_engine(
    url: str,
    config: RunConfig,
    settings: RuntimeSettings,
    serving: ServingSettings,
    fix: FixSettings,
    venue_log: Path | None = None,
    predictor: Predicting | None = None,
    resources: ExitStack | None = None,
    observers: Sequence[EventObserver] = (),
    *,
    tracking: TrackingSettings,
    feed_source: FeedSource | None = None,
    execution_source: ExecutionSource | None = None,
    cancel_on_stop: bool = True,
) -> Engine:
    """The engine of ``config``. A model strategy asks ``predictor`` when given (e.g. one
    window's model in a walk-forward), else the champion; either way it trades only bars after
    the model's label end. FIX execution opens a session (and, for ``fix-venue``, a venue)
    that ``resources`` closes. ``serving``: the model's (in process, or its token and request
    size over HTTP); ``fix``: the FIX session's; ``tracking``: the MLflow store the champion is
    loaded from in process. A live session passes ``feed_source`` (bars as they are committed,
    instead of the stored ones) and ``execution_source`` (its broker, opened in
    ``resources``)."""
    card = None
    if not any(s.signal == "model" for s in config.strategies):
        predictor = None
    else:
        predictor = predictor or model_client(url, config.model_url, serving, tracking)
        card = latest_trained(predictor, config)
        config = out_of_sample(config, card)
    instruments = load_instruments(url, config.symbols)
    try:
        feed = (feed_source or stored_bars)(url, instruments, config)
    except LookupError as exc:
        if predictor is None or seen_through(card) is None or config.in_sample:
            raise
        raise LookupError(
            f"{exc}. The {card.role} {card.model} v{card.version} trades only bars after its"
            f" training data and labels (through {seen_through(card):%Y-%m-%d}): ingest later"
            " bars, or train with a holdout (`qtis train --holdout`)"
        ) from exc
    needs_features = any(
        s.signal == "model"
        or (s.sizing == "vol-target" and s.portfolio is None)
        or s.stop_atr
        or s.trail_atr
        for s in config.strategies
    )
    features = None
    if needs_features:
        features = OnlineFeatureEngine.from_warehouse(url, feed.symbols, warm_up=False)
    execution = None
    if config.execution != "simulated":
        if resources is None:
            raise ValueError(f"{config.execution} execution needs resources= to close it")
        opened = (execution_source or partial(fix_execution, settings=fix))(
            config, instruments, feed
        )
        execution = resources.enter_context(opened)
    journal = Journal(
        url, config.stream, batched=config.mode == "backtest", batch_size=settings.journal_batch
    )
    return Engine(
        config,
        feed,
        instruments,
        journal,
        predictor=predictor,
        features=features,
        settings=settings,
        model_batch=serving.serve_max_windows,
        venue_log=venue_log,
        execution=execution,
        observers=observers,
        cancel_on_stop=cancel_on_stop,
    )


def stored_bars(url: str, instruments: dict[str, Instrument], config: RunConfig) -> BarFeed:
    """The bars of a backtest or paper run: read from ``market.bars`` once."""
    return BarFeed.from_warehouse(url, instruments, config.start, config.end, config.warmup_bars)


@contextmanager
def fix_execution(
    config: RunConfig, instruments, feed: BarSource, settings: FixSettings
) -> Iterator[Execution]:
    """The FIX 4.4 gateway a run's orders go through (QTIS_FIX_*), logged on for the run: to
    the venue at QTIS_FIX_HOST:PORT, or (``fix-venue``) to a simulated venue started here on a
    free port, which sees each bar just before the engine and fills as the simulator does."""
    with ExitStack() as stack:
        if config.execution == "fix-venue":
            local = settings.model_copy(update={"host": "127.0.0.1", "port": 0})
            venue = stack.enter_context(
                FixVenue(config.cost_model(), instruments, feed.symbols, local)
            )
            venue.follow(feed)
            settings = local.model_copy(update={"port": venue.port})
        yield stack.enter_context(FixGateway(instruments, settings))


def latest_trained(predictor, config: RunConfig):
    """Of the models the strategies ask (champion, challenger), the card of the one trained on
    the latest bars: both books trade only bars neither model saw."""
    info = predictor.info()
    roles = {s.model_role for s in config.strategies if s.signal == "model"}
    cards = [model_card(info, role) for role in sorted(roles)]
    return max(cards, key=lambda c: (seen_through(c) is not None, seen_through(c)))


def seen_through(card):
    """The last bar a model has seen, its labels included (a card from before ``label_end``
    was recorded: its last training bar)."""
    return card.label_end or card.trained_through


def out_of_sample(config: RunConfig, card) -> RunConfig:
    """A model trades only bars after the last one its training saw, labels included: with no
    start given, the run starts the day after; an earlier start is refused unless
    ``in_sample`` is set."""
    through = seen_through(card)
    if through is None or config.in_sample:
        return config
    first = through.date() + timedelta(days=1)
    if config.start is None:
        return config.model_copy(update={"start": first})
    if config.start < first:
        raise ValueError(
            f"the model {card.model} v{card.version} has seen bars (and labels) through"
            f" {through:%Y-%m-%d}: start on or after {first} to trade out of sample"
            " (or allow in-sample trading explicitly; its results would not be honest)"
        )
    return config


def model_client(
    url: str, model_url: str | None, settings: ServingSettings, tracking: TrackingSettings
):
    """The champion: over HTTP when ``model_url`` is given (with QTIS_API_TOKEN as the bearer
    token), else loaded in this process from ``tracking``'s registry."""
    if model_url:
        return ServingClient(model_url, token=settings.api_token)

    no_shadow_log = settings.model_copy(update={"serve_shadow_log": False})
    return Predictor(url, no_shadow_log, tracking=tracking)


def run(
    url: str,
    config: RunConfig,
    progress: Callable[[int, int], None] | None = None,
    settings: RuntimeSettings | None = None,
    venue_log: Path | None = None,
    predictor: Predicting | None = None,
    observers: Sequence[EventObserver] = (),
    serving: ServingSettings | None = None,
    fix: FixSettings | None = None,
    conventions: Conventions | None = None,
    tracking: TrackingSettings | None = None,
) -> RunReport:
    """Run (or, for a paper stream that exists, resume) ``config`` to the end of its bars;
    ``predictor``: the model to trade instead of the champion; ``observers`` see every event
    (Prometheus metrics, alerts). An entry point used directly (CLI, demo, bench, tests):
    settings not given are built here, once, from the environment (QTIS_TRADE_*, QTIS_SERVE_*,
    QTIS_FIX_*, QTIS_ANALYTICS_* with the engine's bars per year, QTIS_MLFLOW_*), and passed
    down."""
    settings = settings or RuntimeSettings()
    serving, fix = serving or ServingSettings(), fix or FixSettings()
    tracking = tracking or TrackingSettings()
    conventions = conventions or analytics_conventions(periods_per_year=settings.bars_per_year)
    with ExitStack() as resources:
        engine = build_engine(
            url,
            config,
            settings,
            serving,
            fix,
            venue_log,
            predictor,
            resources,
            observers,
            tracking=tracking,
        )
        journal = engine.journal
        resources.callback(journal.close)
        if config.mode == "backtest" and journal.exists():
            raise ValueError(
                f"stream {config.stream!r} already exists: a backtest starts a new stream"
            )
        if not journal.acquire():
            raise StreamBusy(f"an engine is already running stream {config.stream!r}")
        engine.run(progress)
    return report(url, config.stream, conventions)


def report(url: str, stream: str, conventions: Conventions) -> RunReport:
    """A stream's results from its journal; its metrics under ``conventions`` (built by the
    entry point, ``periods_per_year`` the engine's bars per year)."""
    journal = Journal(url, stream)
    try:
        if not journal.exists():
            raise LookupError(f"no stream {stream!r} in runtime.events (`qtis trade runs`)")
        book = rebuild(journal)
        wanted = [ev.ORDER_FILLED, ev.BAR_CLOSED, ev.ORDER_ACCEPTED, ev.ORDER_DENIED]
        fills, curve, latencies, denials, examples = [], [], [], {}, {}
        for event in journal.read(types=wanted):
            if isinstance(event, ev.OrderFilled):
                fills.append(_stored_order(event.fill.to_payload()))
            elif isinstance(event, ev.BarClosed):
                curve.append({"ts": event.ts, "equity": event.equity})
            elif isinstance(event, ev.OrderAccepted) and event.tick_to_order_us is not None:
                latencies.append(event.tick_to_order_us)
            elif isinstance(event, ev.OrderDenied):
                denials[event.check] = denials.get(event.check, 0) + 1
                examples.setdefault(event.check, event.reason)
    finally:
        journal.close()
    metrics = summary(book, [(c["ts"], c["equity"]) for c in curve], conventions)
    latency = {}
    if latencies:
        values = np.asarray(latencies)
        latency = {
            "orders": len(values),
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
        }
    return RunReport(stream, book, metrics, fills, curve, latency, denials, examples)


def _stored_order(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its keys in the order Postgres's jsonb keeps them (shorter first, then
    by bytes): the order a report's fills have always had in ``--json-out`` files."""
    return dict(sorted(payload.items(), key=lambda kv: (len(kv[0]), kv[0].encode())))


def reference_runs(
    url: str,
    tag: str,
    fast: int = 20,
    slow: int = 50,
    costs: dict[str, Any] | None = None,
    serving: ServingSettings | None = None,
    tracking: TrackingSettings | None = None,
) -> tuple[dict[str, RunReport], str | None]:
    """The champion traded out of sample, next to buy-and-hold, an SMA cross and a risk-parity
    portfolio of the same universe on the same bars with the same costs - the comparison a model
    has to win. Returns the runs by name and, when no model can trade, why. An entry like
    :func:`run`: ``serving`` and ``tracking`` None are built from the environment."""
    strategies = {
        "buy_and_hold": StrategyConfig(name="buy_and_hold", signal="buy-and-hold"),
        f"sma_{fast}_{slow}": StrategyConfig(
            name=f"sma_{fast}_{slow}", signal="sma-cross", fast=fast, slow=slow
        ),
        "risk_parity": StrategyConfig(
            name="risk_parity", signal="buy-and-hold", portfolio="risk-parity"
        ),
    }
    serving, tracking = serving or ServingSettings(), tracking or TrackingSettings()
    start, why = None, None
    try:
        card = model_client(url, None, serving, tracking).info().champion
        start = out_of_sample(RunConfig(stream="probe"), card).start
        strategies = {"champion": StrategyConfig(name="champion", signal="model")} | strategies
    except NoChampion as exc:
        why = str(exc)
    runs = {}
    for name, strategy in strategies.items():
        config = RunConfig(stream=f"{tag}-{name}", strategies=[strategy], start=start,
                           costs=costs or {})  # fmt: skip
        runs[name] = run(url, config, serving=serving, tracking=tracking)
    return runs, why
