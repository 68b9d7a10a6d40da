"""``qtis trade sweep``: a parameter grid of the SMA cross traded over the universe at once
(``trading_runtime.sweep``), with costs, its best cells, and the deflated Sharpe ratio of the
best one given how many cells were tried."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import console, err, fail, ready_url, write_json
from core.errors import InputError
from trading_runtime import run_options as ro
from trading_runtime.analytics.conventions import conventions
from trading_runtime.config import RunConfig
from trading_runtime.instruments import load_instruments
from trading_runtime.settings import RiskLimits, RuntimeSettings

if TYPE_CHECKING:
    from trading_runtime.sweep import Grid, SweepResult

Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]
Range = Annotated[str, typer.Option(help="start:stop:step (stop included), a,b,c or one value")]


def sweep(
    signal: Annotated[str, typer.Option(help="sma-cross (the only rule swept)")] = "sma-cross",
    fast: Range = "5:50:5",
    slow: Range = "20:200:10",
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
    report the best cells and the deflated Sharpe of the best given the cells tried."""
    # deferred: the sweep pulls numba, scipy and the online features (~0.5 s measured), which
    # would load on every qtis command
    from trading_runtime.sweep import Sweep, load_market, run_sweep

    runtime = RuntimeSettings()
    try:
        if signal != "sma-cross":
            raise InputError(
                f"--signal {signal}: only sma-cross grids are swept (model-threshold grids are"
                " not yet: backtest each threshold with `qtis trade backtest`)"
            )
        grid = grid_of(fast, slow, sizing, quantity, target_vol, max_weight, runtime)
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
        instruments = load_instruments(url, ro.split_symbols(symbols))
        market = load_market(
            url, instruments, start and start.date(), end and end.date(), 250, sizing
        )
        per_year = conventions(periods_per_year=runtime.bars_per_year)
        swept = Sweep(market, grid, run.cost_model(), limits, capital or runtime.capital, per_year)
        result = run_sweep(swept)
    except (InputError, LookupError, ValueError) as exc:
        raise fail(str(exc)) from exc
    print_sweep(result, top, time.perf_counter() - started)
    if json_out is not None:
        write_json(json_out, result.to_json(), f" ({len(result.cells)} cells)", indent=1)


def grid_of(fast, slow, sizing, quantity, target_vol, max_weight, runtime) -> Grid:
    """The grid of the options; the sizing parameter that does not apply is refused."""
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
    return Grid(
        parse_range(fast, "fast"),
        parse_range(slow, "slow"),
        sizing,
        sizes,
        caps or (runtime.max_weight,),
    )


def print_sweep(result: SweepResult, top: int, elapsed: float) -> None:
    """The best ``top`` cells, the best cell's deflated Sharpe, and the sweep's size and speed."""
    ranked = result.ranked()[:top]
    params = ("size", "max_weight")
    extra = [k for k in params if len({c.get(k) for c in result.cells}) > 1]  # swept ones
    same = ", ".join(f"{k} {ranked[0][k]:g}" for k in params if k in ranked[0] and k not in extra)
    title = f"best {len(ranked)} of {len(result.cells)} cells" + (f" ({same})" if same else "")
    columns = ("return", "Sharpe", "max DD", "turnover", "fills", "denied", "fees")
    table = Table("fast", "slow", *extra, *columns, title=title)
    for c in ranked:
        table.add_row(
            str(c["fast"]), str(c["slow"]), *(f"{c[k]:g}" for k in extra),
            f"{c['total_return']:.2%}", _num(c["sharpe"]), f"{c['max_drawdown']:.2%}",
            _num(c["turnover"]), f"{c['fills']:,}", f"{c['denied']:,}", f"{c['fees']:,.0f}",
        )  # fmt: skip
    console.print(table)
    best, dsr = result.cells[result.best], result.deflated
    if dsr is None:
        console.print("deflated Sharpe: too few traded bars to judge the best cell")
    else:
        console.print(
            f"best cell fast {best['fast']} slow {best['slow']}: deflated Sharpe"
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
        " with loading",
        highlight=False,
    )


def _num(value: float) -> str:
    return f"{value:.2f}" if value == value else "-"
