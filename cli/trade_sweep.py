"""``qtis trade sweep``: a parameter grid of the SMA cross, or of thresholds on the champion
model's forecasts, traded over the universe at once (``trading_runtime.sweep``), with costs, its
best cells, and the deflated Sharpe ratio of the best one given how many cells were tried."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import console, err, fail, ready_url, write_json
from core.errors import InputError
from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from trading_runtime import run_options as ro
from trading_runtime.analytics.conventions import conventions
from trading_runtime.config import RunConfig
from trading_runtime.instruments import load_instruments
from trading_runtime.runs import model_client
from trading_runtime.settings import RiskLimits, RuntimeSettings

if TYPE_CHECKING:
    from trading_runtime.sweep import Grid, Market, SweepResult

Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]
Window = Annotated[
    str | None, typer.Option(help="sma-cross: windows, start:stop:step (stop included), a,b,c")
]
WARMUP_BARS = 250  # bars before the start that warm the features up, as a backtest's


def sweep(
    signal: Annotated[str, typer.Option(help="sma-cross | model (the champion)")] = "sma-cross",
    fast: Window = None,
    slow: Window = None,
    threshold: Annotated[
        str | None, typer.Option(help="model: smallest |forecast| acted on (a range, from 0)")
    ] = None,
    horizon: Annotated[int, typer.Option(help="model: the forecast horizon traded")] = 1,
    in_sample: Annotated[
        bool, typer.Option(help="model: trade bars it was trained on (not honest)")
    ] = False,
    sizing: Annotated[str, typer.Option(help="fixed | equal | vol-target")] = "vol-target",
    quantity: Annotated[str | None, typer.Option(help="fixed sizing: units (a range)")] = None,
    target_vol: Annotated[str | None, typer.Option(help="vol-target: annual (a range)")] = None,
    max_weight: Annotated[str | None, typer.Option(help="vol-target: cap (a range)")] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Universe (repeat or comma)")] = None,
    start: Day = None,
    end: Day = None,
    capital: Annotated[float | None, typer.Option(help="default QTIS_TRADE_CAPITAL")] = None,
    commission_bps: float | None = None,
    spread_bps: Annotated[float | None, typer.Option(help="half spread, bps")] = None,
    slippage_bps: float | None = None,
    participation: float | None = None,
    free_costs: Annotated[bool, typer.Option(help="no costs, no volume cap")] = False,
    limit: Annotated[list[str] | None, typer.Option(help="risk limit NAME=VALUE")] = None,
    top: Annotated[int, typer.Option(help="cells shown, best Sharpe first")] = 10,
    json_out: Annotated[Path | None, typer.Option(help="write every cell's metrics")] = None,
) -> None:
    """Trade a parameter grid over the universe at once (a compiled pass per cell, cells in
    parallel) with the backtest's costs, sizing and limits - its fills are the engine's - and
    report the best cells and the deflated Sharpe of the best given the cells tried. An SMA
    grid sweeps --fast x --slow (default 5:50:5 x 20:200:10); a model grid sweeps --threshold
    on the champion's forecasts, made once for all cells."""
    # deferred: the sweep pulls numba, scipy and the online features (~0.5 s measured), which
    # would load on every qtis command
    from trading_runtime.sweep import Sweep, run_sweep

    runtime = RuntimeSettings()
    try:
        if in_sample and signal != "model":
            raise InputError("--in-sample goes with --signal model")
        grid = grid_of(signal, (fast, slow, threshold), sizing, quantity, target_vol, max_weight,
                       runtime)  # fmt: skip
        costs = {"commission_bps": commission_bps, "half_spread_bps": spread_bps,
                 "slippage_bps": slippage_bps, "participation": participation}  # fmt: skip
        run = RunConfig(
            stream="sweep",
            free_costs=free_costs,
            costs={k: v for k, v in costs.items() if v is not None},
        )
        limits = RiskLimits(**ro.parse_limits(limit))
        grid.cells()  # a grid that makes no cell is refused before the bars are read
    except (InputError, ValueError) as exc:
        raise fail(str(exc)) from exc
    url = ready_url()
    started = time.perf_counter()
    try:
        span = (start and start.date(), end and end.date())
        market = market_of(url, grid, symbols, span, (horizon, in_sample))
        per_year = conventions(periods_per_year=runtime.bars_per_year)
        swept = Sweep(market, grid, run.cost_model(), limits, capital or runtime.capital, per_year,
                      runtime.min_trade)  # fmt: skip
        result = run_sweep(swept)
    except (InputError, LookupError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_sweep(result, top, time.perf_counter() - started)
    if json_out is not None:
        write_json(json_out, result.to_json(), f" ({len(result.cells)} cells)", indent=1)


def market_of(url: str, grid: Grid, symbols, span, model: tuple[int, bool]) -> Market:
    """The bars; for a model grid with the champion's forecasts (the model loaded in process,
    from QTIS_MLFLOW_*'s registry, as a backtest loads it) at ``model``: horizon, in sample."""
    from trading_runtime.sweep import load_market  # deferred: numba, as in sweep()
    from trading_runtime.sweep_model import load_model_market  # deferred: numba (it imports sweep)

    instruments = load_instruments(url, ro.split_symbols(symbols))
    if grid.signal != "model":
        return load_market(url, instruments, *span, WARMUP_BARS, grid.sizing)
    serving = ServingSettings()
    predictor = model_client(url, None, serving, TrackingSettings())
    horizon, in_sample = model
    return load_model_market(url, instruments, predictor, *span, WARMUP_BARS, horizon,
                             serving.serve_max_windows, in_sample)  # fmt: skip


def grid_of(signal, signals, sizing, quantity, target_vol, max_weight, runtime) -> Grid:
    """The grid of the options (``signals``: --fast, --slow, --threshold as given); the sizing
    parameter that does not apply is refused, and so are the other signal's options."""
    from trading_runtime.sweep import Grid, parse_range  # deferred: numba, as in sweep()

    if sizing != "fixed" and quantity is not None:
        raise InputError("--quantity goes with --sizing fixed")
    if sizing != "vol-target" and (target_vol or max_weight) is not None:
        raise InputError("--target-vol and --max-weight go with --sizing vol-target")
    sizes = {
        "fixed": parse_range(quantity, "quantity", integer=False) if quantity else (100.0,),
        "vol-target": parse_range(target_vol, "target-vol", integer=False)
        if target_vol
        else (runtime.target_vol,),
    }.get(sizing, (0.0,))
    caps = parse_range(max_weight, "max-weight", integer=False) if max_weight else None
    fast, slow, threshold = signals
    if signal == "sma-cross":
        fast, slow = fast or "5:50:5", slow or "20:200:10"
    return Grid(
        parse_range(fast, "fast") if fast else (),
        parse_range(slow, "slow") if slow else (),
        sizing,
        sizes,
        caps or (runtime.max_weight,),
        signal,
        parse_range(threshold, "threshold", integer=False, zero=True) if threshold else (),
    )


def print_sweep(result: SweepResult, top: int, elapsed: float) -> None:
    """The best ``top`` cells, the best cell's deflated Sharpe, and the sweep's size and speed."""
    ranked = result.ranked()[:top]
    keys = ("threshold",) if "threshold" in ranked[0] else ("fast", "slow")  # the signal's
    params = ("size", "max_weight")
    extra = [k for k in params if len({c.get(k) for c in result.cells}) > 1]  # swept ones
    same = ", ".join(f"{k} {ranked[0][k]:g}" for k in params if k in ranked[0] and k not in extra)
    title = f"best {len(ranked)} of {len(result.cells)} cells" + (f" ({same})" if same else "")
    columns = ("return", "Sharpe", "max DD", "turnover", "fills", "denied", "fees")
    table = Table(*keys, *extra, *columns, title=title)
    for c in ranked:
        table.add_row(
            *(f"{c[k]:g}" for k in (*keys, *extra)),
            f"{c['total_return']:.2%}", _num(c["sharpe"]), f"{c['max_drawdown']:.2%}",
            _num(c["turnover"]), f"{c['fills']:,}", f"{c['denied']:,}", f"{c['fees']:,.0f}",
        )  # fmt: skip
    console.print(table)
    best, dsr = result.cells[result.best], result.deflated
    if dsr is None:
        console.print("deflated Sharpe: too few traded bars to judge the best cell")
    else:
        console.print(
            f"best cell {' '.join(f'{k} {best[k]:g}' for k in keys)}: deflated Sharpe"
            f" {dsr.probability:.3f} = P(true Sharpe > {dsr.benchmark:.4f} per bar, what the best"
            f" of {dsr.n_trials} unskilled cells would show; its own {dsr.sharpe:.4f})",
            highlight=False,
        )
    approximate = sum(c["approximate"] for c in result.cells)
    if approximate:
        err.print(f"{approximate} cells had more orders in flight than the sweep keeps: netted")
    rate = len(result.cells) * result.bars * result.symbols / max(result.seconds, 1e-9)
    console.print(
        f"{len(result.cells)} cells x {result.bars:,} bars x {result.symbols} symbols:"
        f" {result.seconds:.2f} s trading ({rate:,.0f} cell-symbol-bars/s), {elapsed:.1f} s"
        f" with loading and {result.compile_seconds:.1f} s compiling the kernel (once:"
        " numba caches it)",
        highlight=False,
    )


def _num(value: float) -> str:
    return f"{value:.2f}" if value == value else "-"
