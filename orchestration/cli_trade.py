"""``qtis trade``: backtests and paper runs of the event-sourced engine, their state, and the
operator's overrides (halt, resume, limits) - which are journal events with who and why."""

from __future__ import annotations

import getpass
import json
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from orchestration.cli_common import console, err, fail, num, pct, ready_url

trade_app = typer.Typer(
    help="The trading runtime: backtest, paper trading, status, kill switch, journal replay.",
    no_args_is_help=True,
)

Symbols = Annotated[list[str] | None, typer.Option(help="Universe (repeat or comma-separate)")]
Stream = Annotated[str, typer.Option(help="Journal stream of the run")]


def _symbols(values: list[str] | None) -> list[str] | None:
    out = [s.strip().upper() for v in values or [] for s in v.split(",") if s.strip()]
    return out or None


def _config(mode: str, stream: str, options: dict[str, Any], strategies_file: Path | None):
    from trading_runtime.config import RunConfig, StrategyConfig

    strategy_keys = set(StrategyConfig.model_fields) - {"limits"}
    run_keys = {
        "symbols",
        "start",
        "end",
        "free_costs",
        "model_url",
        "bars_per_second",
        "in_sample",
        "execution",
    }
    strategy = {k: v for k, v in options.items() if k in strategy_keys and v is not None}
    run = {k: v for k, v in options.items() if k in run_keys and v is not None}
    costs = {k: v for k, v in options["costs"].items() if v is not None}
    try:
        if strategies_file is not None:
            loaded = yaml.safe_load(strategies_file.read_text()) or {}
            strategies = [StrategyConfig(**s) for s in loaded.get("strategies", [])]
            if not strategies:
                raise fail(f"{strategies_file} lists no strategies (a 'strategies:' list)")
            costs = {**loaded.get("costs", {}), **costs}
        else:
            limits = dict(options["limits"])
            strategies = [StrategyConfig(**strategy, limits=limits)]
        return RunConfig(mode=mode, stream=stream, strategies=strategies, costs=costs, **run)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid run configuration: {problems}") from exc


def _limits(pairs: list[str] | None) -> dict[str, Any]:
    from trading_runtime.settings import RiskLimits

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in RiskLimits.model_fields:
            known = ", ".join(RiskLimits.model_fields)
            raise fail(f"--limit {pair!r}: expected NAME=VALUE with NAME one of {known}")
        out[key] = None if value.lower() in ("none", "off", "") else yaml.safe_load(value)
    return out


def _run(
    config,
    json_out: Path | None,
    venue_log: Path | None = None,
    tear_sheet: Path | None = None,
    observers: list | None = None,
) -> None:
    from trading_runtime.engine import EngineHalted
    from trading_runtime.runs import StreamBusy, run

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
    _print_metrics(result, elapsed)
    if any(a.shadow for a in result.book.accounts.values()):
        try:
            _print_comparison(_compare(result))
        except (LookupError, ValueError) as exc:
            err.print(f"no live/shadow comparison: {exc}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        from training.evaluate import plain  # JSON-safe: NaN as null

        json_out.write_text(json.dumps(plain(result.to_json()), indent=1))
        console.print(f"wrote {json_out} (metrics, {len(result.fills)} fills, equity curve)")
    if tear_sheet is not None:
        _write_tear_sheet(_analysis(url, config.stream), tear_sheet)


def _with_challenger(config):
    """--challenger-shadow: the strategy on the champion, and the same strategy on the
    challenger in a shadow book."""
    main = config.strategies[0]
    if len(config.strategies) != 1 or main.signal != "model":
        raise fail(
            "--challenger-shadow goes with --signal model (a --strategies file marks its own"
            " shadow strategies: shadow: true, model_role: challenger)"
        )
    update = {"name": "challenger", "model_role": "challenger", "shadow": True}
    return config.model_copy(update={"strategies": [main, main.model_copy(update=update)]})


def _compare(result, live: str | None = None, shadow: str | None = None):
    from trading_runtime.ab import compare
    from trading_runtime.settings import RuntimeSettings

    return compare(result, live, shadow, RuntimeSettings().bars_per_year)


def _print_comparison(found) -> None:
    """The live book against the shadow book, with the paired test's verdict."""
    table = Table("", f"{found.live} (live)", f"{found.shadow} (shadow)", "shadow - live",
                  title=f"live vs shadow, stream {found.stream}")  # fmt: skip
    table.add_row(
        "total return",
        *(f"{v:.2%}" for v in (found.live_total_return, found.shadow_total_return)),
        f"{found.total_return_difference:+.2%}",
    )
    table.add_row(
        "Sharpe",
        *(f"{v:.2f}" for v in (found.live_sharpe, found.shadow_sharpe)),
        f"{found.sharpe_difference:+.2f}",
    )
    console.print(table)
    console.print(
        f"paired test on {found.bars} per-bar returns (Diebold-Mariano, HAC Newey-West"
        f" {found.hac_lags} lags): statistic {found.statistic:+.2f}, p={found.p_value:.3f};"
        f" P(shadow Sharpe > live Sharpe) {found.psr:.2f}",
        highlight=False,
    )
    console.print(f"[bold]{found.verdict}[/]", highlight=False)


def _print_metrics(result, elapsed: float) -> None:
    metrics = dict(result.metrics)
    if len(metrics) == 2:  # one sub-account: its total is itself
        metrics.pop("total")
    table = Table("", *metrics, title=f"stream {result.stream}")
    rows = (
        ("final equity", "final_equity", "{:,.2f}"),
        ("total return", "total_return", "{:.2%}"),
        ("CAGR", "cagr", "{:.2%}"),
        ("volatility", "volatility", "{:.2%}"),
        ("Sharpe", "sharpe", "{:.2f}"),
        ("max drawdown", "max_drawdown", "{:.2%}"),
        ("fees", "fees", "{:,.2f}"),
        ("slippage + spread", "slippage", "{:,.2f}"),
        ("orders (denied)", None, None),
        ("turnover / year", "turnover", "{:.2f}x"),
        ("bars", "bars", "{:,}"),
    )
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{m['orders']:,} ({m['denied']:,})" for m in metrics.values()]
        else:
            cells = [fmt.format(m[key]) if m[key] == m[key] else "-" for m in metrics.values()]
        table.add_row(label, *cells)
    console.print(table)
    bars = next(iter(metrics.values()))["bars"]
    symbols = len(result.book.config.get("symbols") or []) or "all"
    console.print(f"{bars:,} bars x {symbols} symbols in {elapsed:.1f} s", highlight=False)
    if result.denials:
        console.print(
            "denied by check: " + ", ".join(f"{k} {v}" for k, v in result.denials.items())
        )
    if result.latency_us:
        lat = result.latency_us
        console.print(
            f"tick-to-order: p50 {lat['p50'] / 1e3:.2f} ms, p99 {lat['p99'] / 1e3:.2f} ms"
            f" over {lat['orders']} orders"
        )


COST_OPTIONS = {"commission_bps": "commission_bps", "commission_per_share": "commission_per_share",
                "spread_bps": "half_spread_bps", "slippage": "slippage",
                "slippage_bps": "slippage_bps", "participation": "participation"}  # fmt: skip


def _options(raw: dict[str, Any]) -> dict[str, Any]:
    """A command's option values as RunConfig / StrategyConfig fields."""
    sizing = raw["sizing"] or {"buy-and-hold": "equal"}.get(raw["signal"], "vol-target")
    return raw | {
        "sizing": sizing,
        "symbols": _symbols(raw["symbols"]),
        "start": raw["start"].date() if raw["start"] else None,
        "end": raw["end"].date() if raw["end"] else None,
        "limits": _limits(raw["limit"]),
        "costs": {field: raw.get(option) for option, field in COST_OPTIONS.items()},
        "bars_per_second": raw.get("bars_per_second") or None,
        "portfolio": _portfolio(raw),
    }


def _portfolio(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The --portfolio method and its options as a PortfolioConfig's fields."""
    if raw.get("portfolio") is None:
        return None
    caps = {}
    for pair in raw.get("sector_cap") or []:
        sector, sep, cap = pair.partition("=")
        if not sep:
            raise fail(f"--sector-cap {pair!r}: expected SECTOR=MAX_WEIGHT, e.g. technology=0.4")
        caps[sector.strip()] = yaml.safe_load(cap)
    names = ("covariance", "lookback", "rebalance_every", "long_short", "turnover")
    options = {k: raw[k] for k in names if raw.get(k) is not None}
    return {"method": raw["portfolio"], **options} | ({"sector_caps": caps} if caps else {})


Portfolio = Annotated[
    str | None,
    typer.Option(
        help="size with an optimizer: equal | min-variance | risk-parity | hrp | mean-cvar"
        " | black-litterman (views: the model's forecasts)"
    ),
]


Signal = Annotated[str, typer.Option(help="buy-and-hold | sma-cross | model")]
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


@trade_app.command()
def backtest(
    start: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    symbols: Symbols = None,
    signal: Signal = "sma-cross",
    fast: int = 20,
    slow: int = 50,
    sizing: Sizing = None,
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
    commission_bps: float | None = None,
    commission_per_share: float | None = None,
    spread_bps: SpreadBps = None,
    slippage: SlippageModel = None,
    slippage_bps: float | None = None,
    participation: float | None = None,
    limit: Limits = None,
    portfolio: Portfolio = None,
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
) -> None:
    """Replay market.bars through the engine (features, signals, risk, simulated execution),
    journaled, and print the metrics after costs (and live vs shadow, with a shadow book)."""
    options = _options(dict(locals()))
    name = stream or f"backtest-{date.today():%Y%m%d}-{uuid.uuid4().hex[:6]}"
    config = _config("backtest", name, options, strategies)
    if challenger_shadow:
        config = _with_challenger(config)
    _run(config, json_out, tear_sheet=tear_sheet)


@trade_app.command()
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
    start: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    symbols: Symbols = None,
    signal: Signal = "model",
    sizing: Sizing = None,
    vol: Annotated[str, typer.Option(help="vol-target: atr | garch")] = "atr",
    quantity: Annotated[float | None, typer.Option(help="fixed sizing: units")] = None,
    capital: Annotated[float | None, typer.Option(help="default QTIS_TRADE_CAPITAL")] = None,
    threshold: Threshold = None,
    stop_atr: StopAtr = None,
    trail_atr: TrailAtr = None,
    commission_bps: float | None = None,
    commission_per_share: float | None = None,
    spread_bps: SpreadBps = None,
    slippage: SlippageModel = None,
    slippage_bps: float | None = None,
    participation: float | None = None,
    limit: Limits = None,
    portfolio: Portfolio = None,
    strategies: StrategiesFile = None,
    stream: Annotated[
        str | None, typer.Option(help="window streams <stream>-wNN; default walkforward-<id>")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option(help="write metrics, windows, equity curve, fills, baseline")
    ] = None,
) -> None:
    """Walk-forward backtest: per window a model trained on the bars before it only (or the
    champion of its day), trading the next bars with costs; the windows stitched into one
    out-of-sample record, next to buy-and-hold."""
    from trading_runtime.walkforward import WalkForwardSettings

    raw = dict(locals())
    plan = {k: raw[k] for k in ("windows", "train_bars", "test_bars", "mode", "source", "purge")}
    try:
        settings = WalkForwardSettings(**{k: v for k, v in plan.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid walk-forward: {problems}") from exc
    name = stream or f"walkforward-{date.today():%Y%m%d}-{uuid.uuid4().hex[:6]}"
    config = _config("backtest", name, _options(raw), strategies)
    found = _walk_forward(config, settings)
    print_walk_forward(found)
    if json_out is not None:
        from training.evaluate import plain  # JSON-safe: NaN as null

        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(plain(found.to_json()), indent=1, default=str))
        console.print(
            f"wrote {json_out} (metrics, {len(found.windows)} windows, {len(found.fills)} fills,"
            " equity curve, baseline)",
            highlight=False,
            soft_wrap=True,
        )
    if not found.metrics["windows_traded"]:
        raise fail("no window was traded (the reasons are in the table)", code=1)


def _walk_forward(config, settings):
    from trading_runtime.engine import EngineHalted
    from trading_runtime.runs import StreamBusy
    from trading_runtime.walkforward import walk_forward

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
            return walk_forward(
                url, config, model_source(url, settings), settings, progress=advance
            )
        except EngineHalted as exc:
            raise fail(str(exc), code=3) from exc
        except (StreamBusy, LookupError, ValueError) as exc:
            raise fail(str(exc)) from exc


def model_source(url: str, settings):
    """The walk-forward's per-window model source by ``settings.source``: an XGBoost fitted per
    window (in process, never registered), or the champion of each window's day."""
    if settings.source == "champion":
        from serving.champion_source import ChampionSource
        from trading_runtime.walkforward import bar_timeline

        return lambda symbols, horizon: ChampionSource(url, bar_timeline(url, symbols), horizon)
    from serving.retrain_source import RetrainSource
    from training.walkforward_fit import FitParams

    s = settings
    params = FitParams(s.validation, s.min_history, s.xgb_estimators, s.xgb_max_depth, s.seed)
    return lambda symbols, horizon: RetrainSource(url, symbols, horizon, params)


def print_walk_forward(found, out: Console = console) -> None:
    """One row per window (its own dates, model and results), then the stitched record next to
    buy-and-hold of the same symbols over the same traded bars."""
    s = found.settings
    table = Table(
        "window", "trained", "label end", "traded", "model", "return", "Sharpe", "max DD",
        "fills", title=f"walk-forward {found.stream}: {s['mode']}, {s['source']},"
        f" purge {s['purge']} bars",
    )  # fmt: skip
    for r in found.windows:
        w, m = r.window, (r.metrics or {}).get("total", {})
        trained = f"{w.train_start} to {w.train_end}"
        if s["source"] == "champion":  # its own training, not the plan's span
            trained = f"through {r.trained_through or '-'}"
        table.add_row(
            w.name,
            trained,
            str(r.label_end or "-"),
            f"{w.test_start} to {w.test_end}",
            r.model or "-",
            pct(m.get("total_return")) if r.metrics else f"[yellow]skipped[/] {r.skipped}",
            num(m.get("sharpe")),
            pct(m.get("max_drawdown")),
            f"{r.fills:,}",
        )
    out.print(table)
    total, base = found.metrics, found.baseline["metrics"]
    summary = Table("", "walk-forward (out of sample)", "buy-and-hold", title="stitched")
    rows = (
        ("final equity", "final_equity", "{:,.2f}"),
        ("total return", "total_return", "{:.2%}"),
        ("CAGR", "cagr", "{:.2%}"),
        ("volatility", "volatility", "{:.2%}"),
        ("Sharpe", "sharpe", "{:.2f}"),
        ("max drawdown", "max_drawdown", "{:.2%}"),
        ("fees", "fees", "{:,.2f}"),
        ("bars", "bars", "{:,}"),
    )
    for label, key, fmt in rows:
        cells = [m.get(key) for m in (total, base)]
        summary.add_row(label, *("-" if v is None or v != v else fmt.format(v) for v in cells))
    out.print(summary)
    out.print(
        f"{total['windows_traded']} of {len(found.windows)} windows traded,"
        f" {total['fills']:,} fills; symbols {', '.join(found.symbols)}",
        highlight=False,
    )


@trade_app.command()
def paper(
    stream: Stream = "paper",
    start: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    symbols: Symbols = None,
    signal: Signal = "sma-cross",
    fast: int = 20,
    slow: int = 50,
    sizing: Sizing = None,
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
        typer.Option(help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: a free port)"),
    ] = None,
) -> None:
    """Trade a live-like replay of the bars on the simulated venue, committing every decision
    before acting on it. Run it again with the same --stream to resume after a crash."""
    from trading_runtime.config import RunConfig
    from trading_runtime.journal import Journal

    options = _options(dict(locals()))
    journal = Journal(ready_url(), stream)
    try:
        first = next(journal.read(types=["run_started"]), None)
    finally:
        journal.close()
    if first is not None:
        config = RunConfig(**first.payload["config"])
        console.print(f"resuming stream {stream} (its options are the ones it started with)")
    else:
        config = _config("paper", stream, options, strategies)
        if challenger_shadow:
            config = _with_challenger(config)
    from orchestration.runtime_alerts import RuntimeAlerts

    observers: list = [RuntimeAlerts(stream)]
    if metrics_port is not None:
        from trading_runtime.telemetry import RuntimeMetrics

        metrics = RuntimeMetrics(stream)
        try:
            port = metrics.serve(metrics_port)
        except OSError as exc:
            raise fail(f"cannot serve metrics on port {metrics_port}: {exc.strerror}") from exc
        err.print(f"metrics: http://127.0.0.1:{port}/metrics", highlight=False)
        observers.append(metrics)
    _run(config, json_out, venue_log or _venue_log(stream), observers=observers)


def _venue_log(stream: str) -> Path:
    from warehouse.settings import get_settings

    path = get_settings().home / "venue" / f"{stream}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@trade_app.command()
def runs() -> None:
    """Every journal stream with its size and last write."""
    from trading_runtime.journal import streams

    table = Table("stream", "events", "last write", title="runtime.events")
    for stream, count, last in streams(ready_url()):
        table.add_row(stream, f"{count:,}", f"{last:%Y-%m-%d %H:%M:%S}")
    console.print(table)


def _analysis(url: str, stream: str):
    from trading_runtime.analytics.analysis import analyze

    try:
        return analyze(url, stream)
    except LookupError as exc:
        raise fail(str(exc)) from exc


def _write_tear_sheet(analysis, path: Path) -> None:
    from trading_runtime.analytics.tearsheet import write_tear_sheet

    try:
        written = write_tear_sheet(analysis, path)
    except OSError as exc:
        raise fail(
            f"cannot write the tear sheet to {path}: {exc.strerror or exc}; the run is in stream"
            f" {analysis.stream} (`qtis trade report {analysis.stream} --html OTHER_PATH`)"
        ) from exc
    console.print(f"tear sheet: {written.resolve()}", highlight=False, soft_wrap=True)


@trade_app.command()
def report(
    stream: Annotated[str, typer.Argument(help="journal stream (see `qtis trade runs`)")],
    html: Annotated[Path | None, typer.Option(help="write the HTML tear sheet")] = None,
    json_out: Annotated[
        Path | None, typer.Option(help="write metrics, intervals, execution quality")
    ] = None,
) -> None:
    """An existing stream's metrics with bootstrap intervals, its execution quality against
    the arrival prices, and optionally its tear sheet. Conventions: QTIS_ANALYTICS_*."""
    from trading_runtime.analytics.tearsheet import (
        execution_rows,
        metric_rows,
        risk_caption,
        risk_tables,
    )
    from training.evaluate import plain  # JSON-safe: NaN as null

    analysis = _analysis(ready_url(), stream)
    tables = [
        (f"stream {stream} (intervals: {analysis.conventions.ci_level:.0%} bootstrap)",
         metric_rows(analysis)),
        ("execution quality (vs arrival: the decision bar's close)", execution_rows(analysis)),
    ]  # fmt: skip
    if analysis.risk.get("as_of"):
        tables += [t for t in risk_tables(analysis.risk).values() if t[1][1]]
    for title, (columns, rows) in tables:
        table = Table("", *columns, title=title)
        for label, cells in rows:
            table.add_row(label, *cells)
        console.print(table)
    if analysis.risk.get("as_of"):
        console.print(risk_caption(analysis.risk), analysis.risk["correlation"]["message"])
    else:
        console.print(analysis.risk.get("note", ""))
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(plain(analysis.to_json()), indent=1))
        except OSError as exc:
            raise fail(f"cannot write {json_out}: {exc.strerror or exc}") from exc
        console.print(f"wrote {json_out}", highlight=False, soft_wrap=True)
    if html is not None:
        _write_tear_sheet(analysis, html)


@trade_app.command()
def ab(
    stream: Annotated[str, typer.Argument(help="journal stream with a live and a shadow account")],
    live: Annotated[str | None, typer.Option(help="live account; default its only one")] = None,
    shadow: Annotated[str | None, typer.Option(help="shadow account; default its only one")] = None,
    json_out: Annotated[Path | None, typer.Option(help="write the comparison")] = None,
) -> None:
    """Champion/challenger: a stream's live book against its shadow book - total return,
    Sharpe, and a paired test on the per-bar returns (Diebold-Mariano, HAC variance)."""
    from trading_runtime.runs import report
    from trading_runtime.settings import RuntimeSettings

    try:
        found = _compare(report(ready_url(), stream, RuntimeSettings().bars_per_year), live, shadow)
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from exc
    _print_comparison(found)
    if json_out is not None:
        from training.evaluate import plain  # JSON-safe: NaN as null

        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(plain(found.to_dict()), indent=1))
        console.print(f"wrote {json_out}", highlight=False, soft_wrap=True)


def _book(stream: str):
    from trading_runtime.engine import rebuild
    from trading_runtime.journal import Journal

    journal = Journal(ready_url(), stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        return rebuild(journal)
    finally:
        journal.close()


@trade_app.command()
def status(stream: Stream = "paper", as_json: Annotated[bool, typer.Option("--json")] = False):
    """Positions, open orders, PnL and risk state, rebuilt from the journal."""
    book = _book(stream)
    if as_json:
        console.print_json(json.dumps(book.to_state(), default=str))
        return
    console.print(
        f"stream [bold]{stream}[/], last bar {book.last_bar}, {book.events:,} events"
        + (" (finished)" if book.finished else "")
    )
    accounts = Table(
        "account", "state", "equity", "cash", "realized", "fees", "drawdown", title="accounts"
    )
    for a in book.accounts.values():
        state = {"active": "green", "reducing": "yellow", "halted": "red"}[a.state.value]
        accounts.add_row(
            a.name,
            f"[{state}]{a.state.value}[/] {a.state_reason}",
            f"{a.equity:,.2f}",
            f"{a.cash:,.2f}",
            f"{a.realized:,.2f}",
            f"{a.fees:,.2f}",
            f"{a.drawdown:.2%}",
        )
    console.print(accounts)
    positions = Table(
        "account", "symbol", "quantity", "avg price", "mark", "unrealized", title="positions"
    )
    for a in book.accounts.values():
        for p in a.positions.values():
            if p.quantity:
                mark = book.marks.get(p.symbol, p.avg_price)
                positions.add_row(
                    a.name,
                    p.symbol,
                    f"{p.quantity:g}",
                    f"{p.avg_price:.4f}",
                    f"{mark:.4f}",
                    f"{p.unrealized(mark):,.2f}",
                )
    console.print(positions)
    _orders_table(list(book.open.values()), "open orders")
    if book.pending_commands:
        console.print(f"{len(book.pending_commands)} command(s) wait for the engine to apply them")


def _orders_table(orders, title: str) -> None:
    table = Table(
        "client id", "side", "qty", "type", "status", "filled", "avg price", "why", title=title
    )
    for o in orders:
        price = o.stop_price or o.limit_price
        kind = f"{o.type.value}" + (f" @ {price}" if price else "")
        table.add_row(
            o.client_id,
            o.side.value,
            f"{o.quantity:g}",
            kind,
            o.status.value,
            f"{o.filled:g}",
            f"{o.avg_price:.4f}" if o.filled else "-",
            o.reason or "",
        )
    console.print(table)


@trade_app.command()
def orders(
    stream: Stream = "paper",
    last: Annotated[int, typer.Option(help="how many, newest last")] = 20,
    status_: Annotated[str | None, typer.Option("--status", help="e.g. denied, filled")] = None,
) -> None:
    """The stream's orders with their state and why they ended where they did."""
    chosen = [o for o in _book(stream).orders.values() if not status_ or o.status == status_]
    _orders_table(chosen[-last:], f"{len(chosen):,} orders, last {min(last, len(chosen))}")


def _command(
    stream: str,
    command: str,
    reason: str,
    account: str | None,
    actor: str | None,
    limits: dict | None = None,
) -> None:
    from trading_runtime.commands import command_events, command_payload
    from trading_runtime.engine import rebuild
    from trading_runtime.journal import Journal

    url = ready_url()
    try:
        payload = command_payload(command, actor or getpass.getuser(), reason, account, limits)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    journal = Journal(url, stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        if journal.acquire():  # no engine runs: apply it here, the venue hears at next start
            seq = journal.append_command(payload)
            book = rebuild(journal)
            try:
                effects = command_events(book, seq, payload)
            except ValidationError as exc:
                raise fail(f"limits refused: {exc.errors()[0]['msg']}") from exc
            journal.write(effects)
            _report_effects(effects)
            return
        seq = journal.append_command(payload)
        console.print(f"command {seq} journaled; waiting for the running engine to apply it ...")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            applied = [
                e
                for e in journal.read(after=seq, types=["command_applied"])
                if e.payload["command_seq"] == seq
            ]
            if applied:
                effects = [e for e in journal.read(after=applied[0].seq - 1)][:200]
                _report_effects(effects)
                return
            time.sleep(0.2)
        raise fail("the engine holds the stream but did not apply the command within 30 s")
    finally:
        journal.close()


def _report_effects(effects) -> None:
    for e in effects:
        if e.type == "command_applied" and e.payload.get("error"):
            raise fail(e.payload["error"])
        if e.type == "risk_state_changed":
            console.print(f"{e.payload['account']}: {e.payload['state']} ({e.payload['reason']})")
        elif e.type == "cancel_requested":
            console.print(f"cancel {e.payload['client_id']}")
        elif e.type == "limits_changed":
            console.print(f"{e.payload['account']}: limits {e.payload['limits']}")


Reason = Annotated[str, typer.Option(help="why: goes into the journal")]
Account = Annotated[str | None, typer.Option(help="one sub-account; default all")]
Actor = Annotated[str | None, typer.Option(help="who; default the OS user")]


@trade_app.command()
def halt(
    stream: Stream = "paper", reason: Reason = "", account: Account = None, actor: Actor = None
) -> None:
    """Kill switch: cancel every open order and stop trading until `resume`."""
    _command(stream, "halt", reason, account, actor)


@trade_app.command()
def resume(
    stream: Stream = "paper", reason: Reason = "", account: Account = None, actor: Actor = None
) -> None:
    """Trade again after a halt (the drawdown peak restarts from today's equity)."""
    _command(stream, "resume", reason, account, actor)


@trade_app.command()
def limits(
    set_: Annotated[list[str], typer.Option("--set", help="NAME=VALUE")],
    stream: Stream = "paper",
    reason: Reason = "",
    account: Account = None,
    actor: Actor = None,
) -> None:
    """Change risk limits of a running (or stopped) stream."""
    _command(stream, "limits", reason, account, actor, _limits(set_))


@trade_app.command()
def replay(stream: Stream = "paper") -> None:
    """Rebuild the state from the whole journal and check it: against the latest snapshot plus
    the events after it, and against the journal's own invariants."""
    from trading_runtime.journal import Journal
    from trading_runtime.verify import verify

    journal = Journal(ready_url(), stream)
    try:
        if not journal.exists():
            raise fail(f"no stream {stream!r} (see `qtis trade runs`)")
        found = verify(journal)
    finally:
        journal.close()
    for line in found.checks:
        console.print(f"[green]ok[/] {line}")
    for line in found.problems:
        err.print(f"[red]mismatch[/] {line}")
    if found.problems:
        raise typer.Exit(1)
