"""The demo's trading part: the ``reference_backtests`` asset (the champion out of sample next to
buy-and-hold and an SMA cross, after costs), a walk-forward that refits a model per window, an
SMA-cross parameter sweep with its deflated Sharpe, then a short paper session with its
tick-to-order latency from the journal and the journal's own verification."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.render.format import num, pct
from cli.render.trading import denials_text, print_walk_forward
from cli.trade_sweep import grid_of, market_of, print_sweep
from orchestration.assets.trading import reference_backtests
from orchestration.materialize import run_assets
from orchestration.resources import WarehouseResource
from serving.errors import NoChampion
from serving.settings import ServingSettings
from trading_runtime.analytics.analysis import analyze
from trading_runtime.analytics.conventions import conventions
from trading_runtime.analytics.tearsheet import write_tear_sheet
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.options import OptionMarket
from trading_runtime.runs import model_client, run
from trading_runtime.settings import (
    RiskLimits,
    RiskReportSettings,
    RuntimeSettings,
    WalkForwardSettings,
)
from trading_runtime.sweep import Sweep, run_sweep
from trading_runtime.verify import verify
from trading_runtime.walkforward_sources import walk_forward_by_source
from training.evaluate import plain
from training.settings import TrackingSettings


def show_trading(console: Console, warehouse: WarehouseResource) -> str | None:
    """Returns the paper stream's name."""
    with console.status(
        "trading the champion out of sample next to buy-and-hold, an SMA cross and risk parity "
        "(event-sourced engine, simulated venue with costs), through Dagster"
    ):
        result = run_assets([reference_backtests], {"warehouse": warehouse}, log_level="ERROR")
    if not result.success:
        raise SystemExit("the backtests failed; see the Dagster UI (make ui) for the run log")
    meta = result.asset_materializations_for_node("reference_backtests")[0].metadata
    reports = sorted(Path(warehouse.settings().home / "reports").glob("backtest_*.json"))
    table = Table(
        "strategy", "bars", "return", "CAGR", "Sharpe", "max drawdown", "fees", "slippage",
        "orders (denied)",
        title=f"Backtests after costs, {meta['window'].value} (reference_backtests)",
        caption="the champion trades only bars after its training data; same bars and costs "
        "for all; streams " + meta["streams"].value + "-*",
    )  # fmt: skip
    denied = []
    for path in reports:
        stored = json.loads(path.read_text())
        m = next(iter(stored["metrics"].values()))
        if stored.get("denials"):
            name = path.stem.removeprefix("backtest_")
            denied.append(f"  {name}: {denials_text(stored['denials'], stored['denial_examples'])}")
        table.add_row(
            path.stem.removeprefix("backtest_"), f"{m['bars']:,}", f"{m['total_return']:.2%}",
            pct(m["cagr"]), num(m["sharpe"]), f"{m['max_drawdown']:.2%}", f"{m['fees']:,.2f}",
            f"{m['slippage']:,.2f}", f"{m['orders']} ({m['denied']})",
        )  # fmt: skip
    console.print(table)
    for line in denied:
        console.print(line, highlight=False)
    console.print(_tear_sheet(warehouse, meta), soft_wrap=True)
    tracking = warehouse.tracking()
    _walk_forward(console, warehouse, tracking)
    _sweep(console, warehouse.url())
    return _paper(console, warehouse.url(), meta["window"].value[:10], tracking)


def _tear_sheet(warehouse: WarehouseResource, meta) -> str:
    """The champion's reference backtest as an HTML tear sheet (the best Sharpe of this
    materialization's runs when no model traded); returns the line that says where it is."""
    names = [k.removesuffix("_report") for k in meta if k.endswith("_report")]
    if not names:
        return "no backtest ran, so there is no tear sheet"

    def sharpe(name: str) -> float:
        value = meta[f"{name}_sharpe"].value
        return value if value == value else -float("inf")  # NaN last

    name = "champion" if "champion" in names else max(names, key=sharpe)
    stream, runtime = f"{meta['streams'].value}-{name}", RuntimeSettings()
    analysis = analyze(
        warehouse.url(), stream, conventions(periods_per_year=runtime.bars_per_year),
        RiskReportSettings(), option_market=OptionMarket.of(runtime),
    )  # fmt: skip
    path = warehouse.settings().home / "reports" / f"tearsheet_{name}.html"
    return f"[bold]Tear sheet[/] of {name}: {write_tear_sheet(analysis, path).resolve()}"


def _walk_forward(
    console: Console, warehouse: WarehouseResource, tracking: TrackingSettings
) -> None:
    """Three quarters, each traded by an XGBoost fitted only on the three years before it (a
    20-bar purge between), stitched and set against buy-and-hold; JSON in the reports."""
    settings = WalkForwardSettings(windows=3, train_bars=756, test_bars=63, xgb_estimators=100)
    stream = f"demo-wf-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    config = RunConfig(stream=stream, strategies=[StrategyConfig(signal="model")])
    with console.status("walk-forward: a model fitted per window on the bars before it only"):
        url = warehouse.url()
        runtime = RuntimeSettings()
        bars = conventions(periods_per_year=runtime.bars_per_year)
        found = walk_forward_by_source(
            url, config, settings, runtime, ServingSettings(), bars, tracking=tracking
        )
    print_walk_forward(found, console)
    path = warehouse.settings().home / "reports" / "walkforward.json"
    path.write_text(json.dumps(plain(found.to_json()), indent=1, default=str))
    console.print(f"  walk-forward JSON: {path.resolve()}", soft_wrap=True, highlight=False)


def _sweep(console: Console, url: str) -> None:
    """What `qtis trade sweep` does: an SMA-cross grid, then a grid of thresholds on the
    champion's forecasts, each over the universe in one compiled pass per cell, with the
    backtest's costs and vol-target sizing, and the deflated Sharpe of the best cell given how
    many were tried (the first run compiles the kernel, ~20 s, reported apart)."""
    runtime = RuntimeSettings()
    costs = RunConfig(stream="demo-sweep").cost_model()
    per_year = conventions(periods_per_year=runtime.bars_per_year)
    grids = (
        ("sma-cross", ("5:30:5", "40:200:20", None), None, "--fast 5:30:5 --slow 40:200:20"),
        ("model", (None, None, "0:0.002:0.0005"), "0.1,0.15",
         "--signal model --threshold 0:0.002:0.0005 --target-vol 0.1,0.15"),
    )  # fmt: skip
    for signal, signals, target_vol, options in grids:
        grid = grid_of(signal, signals, "vol-target", None, target_vol, None, runtime)
        console.print(f"[bold]Parameter sweep[/] (qtis trade sweep {options})")
        with console.status(f"sweeping {len(grid.cells())} {signal} cells over the universe"):
            started = time.perf_counter()
            try:  # out of sample: the model's grid trades the bars after its training
                market = market_of(url, grid, None, (None, None), (1, False))
            except NoChampion as exc:
                console.print(f"  skipped: {exc}")
                continue
            sweep = Sweep(market, grid, costs, RiskLimits(), runtime.capital, per_year,
                          min_trade=runtime.min_trade)  # fmt: skip
            result = run_sweep(sweep)
        print_sweep(result, 5, time.perf_counter() - started)


def _paper(console: Console, url: str, start: str, tracking: TrackingSettings) -> str:
    stream = f"demo-paper-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        model_client(url, None, ServingSettings(), tracking)
        strategy = StrategyConfig(signal="model", trail_atr=3.0)
    except NoChampion:
        strategy = StrategyConfig(signal="sma-cross", trail_atr=3.0)
    config = RunConfig(mode="paper", stream=stream, strategies=[strategy], start=start)
    with console.status(f"paper trading ({strategy.signal}) on a replay, every decision "
                        "committed to runtime.events before it is sent"):  # fmt: skip
        result = run(url, config, venue_log=None, tracking=tracking)
    journal = Journal(url, stream)
    try:
        checks = verify(journal)
    finally:
        journal.close()
    lat = result.latency_us
    m = next(iter(result.metrics.values()))
    console.print(
        f"[bold]Paper[/] stream {stream}: {m['bars']} bars, {m['orders']} orders"
        f" ({m['denied']} denied), {len(result.fills)} fills, equity {m['final_equity']:,.2f};"
        + (
            f" tick-to-order p50 {lat['p50'] / 1e3:.2f} ms, p99 {lat['p99'] / 1e3:.2f} ms"
            " (bar in -> features -> model -> risk -> journal commit -> venue)"
            if lat
            else " no orders, so no tick-to-order figure"
        )
    )
    if result.denials:
        console.print("  " + denials_text(result.denials, result.denial_examples), highlight=False)
    state = "[green]verified[/]" if not checks.problems else "[red]mismatch[/]"
    console.print(f"  journal replay: {state} ({'; '.join(checks.checks[:2])})")
    return stream
