"""``qtis trade``: backtests and paper runs of the event-sourced engine, their state, and the
operator's overrides (halt, resume, limits) - which are journal events with who and why."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli import trade_live, trade_streams, trade_sweep
from cli.common import console, err, fail, option_group, ready_url, shared_options, write_json
from cli.render.trading import print_comparison, print_metrics, print_walk_forward
from cli.trade_streams import (
    Stream,
    analysis_of,
    live_vs_shadow,
    write_tear_sheet,
)
from monitoring.alerts import AlertSink
from monitoring.runtime_alerts import RuntimeAlerts
from monitoring.settings import AlertSettings
from serving.settings import ServingSettings
from trading_runtime import run_options as ro
from trading_runtime.analytics.conventions import conventions
from trading_runtime.settings import RuntimeSettings
from trading_runtime.telemetry import RuntimeMetrics
from training.settings import TrackingSettings
from warehouse.settings import WarehouseSettings

trade_app = typer.Typer(
    help="The trading runtime: backtest, paper trading, status, kill switch, journal replay"
    " and audit.",
    no_args_is_help=True,
)

Symbols = Annotated[list[str] | None, typer.Option(help="Universe (repeat or comma-separate)")]


def _run(
    config,
    json_out: Path | None,
    venue_log: Path | None = None,
    tear_sheet: Path | None = None,
    observers: list | None = None,
) -> None:
    # deferred: the engine and runs pull sklearn and scipy through the risk model (~2 s
    # measured) and would load on every qtis command
    from trading_runtime.engine import EngineHalted
    from trading_runtime.runs import StreamBusy, run  # deferred: as above

    url = ready_url()
    columns = (
        TextColumn(f"[bold]{config.mode}[/] {config.stream}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("bars", total=None)

        def advance(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                progress.update(task, completed=done, total=total)

        try:
            result = run(url, config, advance, venue_log=venue_log, observers=observers or ())
        except EngineHalted as exc:
            raise fail(str(exc), code=3) from exc
        except (StreamBusy, LookupError, ValueError, ConnectionError) as exc:
            raise fail(str(exc)) from exc
    elapsed = time.perf_counter() - started
    print_metrics(result, elapsed)
    if any(a.shadow for a in result.book.accounts.values()):
        try:
            print_comparison(live_vs_shadow(result))
        except (LookupError, ValueError) as exc:
            err.print(f"no live/shadow comparison: {exc}")
    if json_out is not None:
        from training.evaluate import plain  # deferred: torch+lightning (~6 s); NaN as null

        note = f" (metrics, {len(result.fills)} fills, equity curve)"
        write_json(json_out, plain(result.to_json()), note, indent=1)
    if tear_sheet is not None:
        write_tear_sheet(analysis_of(url, config.stream), tear_sheet)


Portfolio = Annotated[
    str | None,
    typer.Option(
        help="size with an optimizer: equal | min-variance | risk-parity | hrp | mean-cvar"
        " | black-litterman (views: the model's forecasts)"
    ),
]


Signal = Annotated[
    str,
    typer.Option(
        help="buy-and-hold | sma-cross | model | pairs (pairs: --sizing equal --limit"
        " allow_short=true; its settings in a --strategies YAML, docs/strategies.md)"
    ),
]
ChallengerShadow = Annotated[
    bool,
    typer.Option(
        help="model: trade the champion, and the challenger the same way in a shadow book"
    ),
]
Sizing = Annotated[str | None, typer.Option(help="fixed | equal | vol-target")]
Execution = Annotated[
    str | None,
    typer.Option(
        help="simulated (in process) | fix (FIX 4.4 to QTIS_FIX_HOST:PORT) | fix-venue (FIX 4.4"
        " to a simulated venue started for the run)"
    ),
]
StopAtr = Annotated[float | None, typer.Option(help="fixed stop, ATRs")]
TrailAtr = Annotated[float | None, typer.Option(help="trailing stop, ATRs")]
Threshold = Annotated[float | None, typer.Option(help="model: smallest forecast")]
SpreadBps = Annotated[float | None, typer.Option(help="half spread, bps")]
SlippageModel = Annotated[str | None, typer.Option(help="fixed | volatility | impact")]
Limits = Annotated[list[str] | None, typer.Option(help="risk limit NAME=VALUE")]
StrategiesFile = Annotated[Path | None, typer.Option(help="YAML with several strategies")]
Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]


# what to trade and how to size it in a backtest or a paper run
STRATEGY = option_group(
    ("start", Day, None), ("end", Day, None), ("symbols", Symbols, None),
    ("signal", Signal, "sma-cross"), ("fast", int, 20), ("slow", int, 50), ("sizing", Sizing, None),
)  # fmt: skip
# the cost model, risk limits and portfolio optimizer of a simulated run (backtest, walk-forward)
COSTS_AND_LIMITS = option_group(
    ("commission_bps", float | None, None), ("commission_per_share", float | None, None),
    ("spread_bps", SpreadBps, None), ("slippage", SlippageModel, None),
    ("slippage_bps", float | None, None), ("participation", float | None, None),
    ("limit", Limits, None), ("portfolio", Portfolio, None),
)  # fmt: skip


@trade_app.command()
@shared_options(None, STRATEGY)
@shared_options("in_sample", COSTS_AND_LIMITS)
def backtest(
    vol: Annotated[str, typer.Option(help="vol-target: atr | garch")] = "atr",
    quantity: Annotated[float | None, typer.Option(help="fixed sizing: units")] = None,
    capital: Annotated[float | None, typer.Option(help="default QTIS_TRADE_CAPITAL")] = None,
    stop_atr: StopAtr = None,
    trail_atr: TrailAtr = None,
    algo: Annotated[str, typer.Option(help="market | twap | vwap")] = "market",
    algo_bars: int = 4,
    threshold: Threshold = None,
    model_url: Annotated[
        str | None, typer.Option(help="prediction API; default in process")
    ] = None,
    free_costs: Annotated[bool, typer.Option(help="no costs, no volume cap")] = False,
    in_sample: Annotated[
        bool, typer.Option(help="let the model trade bars it was trained on (not honest)")
    ] = False,
    covariance: Annotated[
        str | None, typer.Option(help="portfolio: empirical | ledoit-wolf | denoise")
    ] = None,
    lookback: Annotated[int | None, typer.Option(help="portfolio: bars of returns")] = None,
    rebalance_every: Annotated[int | None, typer.Option(help="portfolio: bars")] = None,
    long_short: Annotated[
        bool | None, typer.Option("--long-short", help="portfolio: allow shorts")
    ] = None,
    turnover: Annotated[
        float | None, typer.Option(help="portfolio: max weight change per rebalance")
    ] = None,
    sector_cap: Annotated[
        list[str] | None, typer.Option(help="portfolio: SECTOR=MAX_WEIGHT (repeatable)")
    ] = None,
    strategies: StrategiesFile = None,
    stream: Annotated[str | None, typer.Option(help="default backtest-<id>")] = None,
    json_out: Annotated[Path | None, typer.Option(help="write metrics, fills, equity")] = None,
    tear_sheet: Annotated[Path | None, typer.Option(help="write the HTML tear sheet")] = None,
    challenger_shadow: ChallengerShadow = False,
    execution: Execution = None,
    **shared: Any,
) -> None:
    """Replay market.bars through the engine (features, signals, risk, simulated execution),
    journaled, and print the metrics after costs (and live vs shadow, with a shadow book)."""
    raw = dict(locals())
    raw |= raw.pop("shared")  # the STRATEGY and COSTS_AND_LIMITS options
    try:
        config = ro.backtest_config(stream, raw, strategies, challenger_shadow)
    except ro.OptionError as exc:
        raise fail(str(exc)) from exc
    _run(config, json_out, tear_sheet=tear_sheet)


@trade_app.command()
@shared_options("trail_atr", COSTS_AND_LIMITS)
def walkforward(
    windows: Annotated[int | None, typer.Option(help="traded windows; QTIS_WALKFORWARD_*")] = None,
    train_bars: Annotated[int | None, typer.Option(help="training bars per window")] = None,
    test_bars: Annotated[int | None, typer.Option(help="bars each window trades")] = None,
    mode: Annotated[str | None, typer.Option(help="anchored | rolling")] = None,
    source: Annotated[
        str | None, typer.Option(help="retrain (a fit per window) | champion (of its day)")
    ] = None,
    purge: Annotated[
        int | None, typer.Option(help="bars between training and trading (>= the horizon)")
    ] = None,
    start: Day = None,
    end: Day = None,
    symbols: Symbols = None,
    signal: Signal = "model",
    sizing: Sizing = None,
    vol: Annotated[str, typer.Option(help="vol-target: atr | garch")] = "atr",
    quantity: Annotated[float | None, typer.Option(help="fixed sizing: units")] = None,
    capital: Annotated[float | None, typer.Option(help="default QTIS_TRADE_CAPITAL")] = None,
    threshold: Threshold = None,
    stop_atr: StopAtr = None,
    trail_atr: TrailAtr = None,
    strategies: StrategiesFile = None,
    stream: Annotated[
        str | None, typer.Option(help="window streams <stream>-wNN; default walkforward-<id>")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option(help="write metrics, windows, equity curve, fills, baseline")
    ] = None,
    **shared: Any,
) -> None:
    """Walk-forward backtest: per window a model trained on the bars before it only (or the
    champion of its day), trading the next bars with costs; the windows stitched into one
    out-of-sample record, next to buy-and-hold."""
    raw = dict(locals())
    raw |= raw.pop("shared")  # the COSTS_AND_LIMITS options
    try:
        config, settings = ro.walk_forward_config(stream, raw, strategies)
    except ro.OptionError as exc:
        raise fail(str(exc)) from exc
    found = _walk_forward(config, settings)
    print_walk_forward(found)
    if json_out is not None:
        from training.evaluate import plain  # deferred: torch+lightning (~6 s); NaN as null

        note = (
            f" (metrics, {len(found.windows)} windows, {len(found.fills)} fills, equity curve,"
            " baseline)"
        )
        write_json(
            json_out, plain(found.to_json()), note, indent=1, highlight=False, soft_wrap=True
        )
    if not found.metrics["windows_traded"]:
        raise fail("no window was traded (the reasons are in the table)", code=1)


def _walk_forward(config, settings):
    # deferred: the engine, runs and the walk-forward pull sklearn, scipy and arch (~3 s
    # measured), the model sources torch+lightning (~6 s); they would load on every qtis command
    from trading_runtime.engine import EngineHalted
    from trading_runtime.runs import StreamBusy  # deferred: as above
    from trading_runtime.walkforward_sources import walk_forward_by_source  # deferred: as above

    url = ready_url()
    columns = (
        TextColumn(f"[bold]walk-forward[/] {config.stream} ({settings.source})"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("windows", total=None)

        def advance(done: int, total: int, result) -> None:
            progress.update(task, completed=done, total=total)
            if result is not None and result.skipped:
                err.print(f"{result.window.name} skipped: {result.skipped}", highlight=False)

        try:
            runtime = RuntimeSettings()
            bars = conventions(periods_per_year=runtime.bars_per_year)
            serving, tracking = ServingSettings(), TrackingSettings()
            return walk_forward_by_source(
                url, config, settings, runtime, serving, bars, advance, tracking=tracking
            )
        except EngineHalted as exc:
            raise fail(str(exc), code=3) from exc
        except (StreamBusy, LookupError, ValueError) as exc:
            raise fail(str(exc)) from exc


@trade_app.command()
@shared_options("stream", STRATEGY)
def paper(
    stream: Stream = "paper",
    vol: str = "atr",
    quantity: float | None = None,
    capital: float | None = None,
    stop_atr: float | None = None,
    trail_atr: float | None = None,
    algo: str = "market",
    algo_bars: int = 4,
    threshold: float | None = None,
    model_url: Annotated[
        str | None, typer.Option(help="prediction API; default in process")
    ] = None,
    bars_per_second: Annotated[float, typer.Option(help="pace of the replay; 0: flat out")] = 20.0,
    limit: Limits = None,
    portfolio: Portfolio = None,
    strategies: StrategiesFile = None,
    venue_log: Annotated[Path | None, typer.Option(help="the simulated venue's order log")] = None,
    json_out: Path | None = None,
    challenger_shadow: ChallengerShadow = False,
    execution: Execution = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve Prometheus metrics on HOST:PORT/metrics (0: a free port)"),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(help="interface of the metrics (0.0.0.0 in a container Prometheus scrapes)"),
    ] = "127.0.0.1",
    **shared: Any,
) -> None:
    """Trade a live-like replay of the bars on the simulated venue, committing every decision
    before acting on it. Run it again with the same --stream to resume after a crash."""
    raw = dict(locals())
    raw |= raw.pop("shared")  # the STRATEGY options
    try:
        options = ro.run_options(raw)
        config, resumed = ro.paper_config(
            ready_url(), stream, options, strategies, challenger_shadow
        )
    except ro.OptionError as exc:
        raise fail(str(exc)) from exc
    if resumed:
        console.print(f"resuming stream {stream} (its options are the ones it started with)")
    home = WarehouseSettings().home
    alerts = RuntimeAlerts(stream, AlertSink(AlertSettings(), home))
    observers: list = [alerts]
    try:
        if metrics_port is not None:
            metrics = RuntimeMetrics(stream)
            try:
                port = metrics.serve(metrics_port, metrics_host)
            except OSError as exc:
                where = f"{metrics_host}:{metrics_port}"
                raise fail(f"cannot serve metrics on {where}: {exc.strerror}") from exc
            err.print(f"metrics: http://{metrics_host}:{port}/metrics", highlight=False)
            observers.append(metrics)
        _run(config, json_out, venue_log or ro.venue_log(home, stream), observers=observers)
    finally:
        alerts.close()  # the alerts still queued (a halt's, say) go out before the exit


# after the run commands, in the order `qtis trade --help` lists them
for command in (
    trade_sweep.sweep,
    trade_live.live,
    trade_streams.runs,
    trade_streams.report,
    trade_streams.ab,
    trade_streams.status,
    trade_streams.orders,
    trade_streams.halt,
    trade_streams.resume,
    trade_streams.limits,
    trade_streams.replay,
    trade_streams.audit,
):
    trade_app.command()(command)
