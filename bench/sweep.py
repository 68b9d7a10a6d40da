"""Parameter sweeps: ``trading_runtime.sweep`` against vectorbt on the same SMA-cross grid, the
same bars and the same costs, in the same run, with every fill compared.

The grid is the issue's: fast 5:50:5 x slow 20:200:10 (the 174 cells with fast < slow), over
synthetic universes (default 10 symbols x 2000 daily bars and 100 x 500;
``warehouse.providers.SyntheticMarket``, no database). Both trade each cell as one account over
the universe: long 100 shares while SMA(fast) > SMA(slow) of close, flat otherwise; decided at a
bar's close, filled at the next bar's open; 1 bp commission on the fill's value and 3 bps (half
spread + slippage) on its price - vectorbt's ``fees`` and ``slippage`` - with no volume cap and
no limit that could deny an order (vectorbt has neither). vectorbt is used as its documentation
shows: ``MA.run`` of the cells' windows (unique windows computed once), ``ma_above`` shifted one
bar as the entries and its negation as the exits, ``Portfolio.from_signals(price=open,
size_type="amount")`` grouped by cell with cash sharing, then each cell's total return, Sharpe
and max drawdown. Ours: ``Sweep`` (the moving averages) and ``run_sweep`` (every cell's pass and
the same metrics, plus the deflated Sharpe of the best cell).

Timed: from the aligned bar arrays to every cell's metrics, median of ``--repeats``, after one
untimed warm-up each (numba compiles, or loads its cache). Throughput: bars x cells / second
(and x symbols). Fills are compared per cell as (symbol, bar, side, quantity) exactly and price
and fee to 1e-9 relative.

    python -m bench.sweep [--symbols 10 100] [--bars 2000 500] [--fast 5:50:5]
                          [--slow 20:200:10] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt
from rich.console import Console
from rich.table import Table

from bench._results import write
from trading_runtime.feed import BarFeed
from trading_runtime.settings import CostModel, RiskLimits
from trading_runtime.sweep import Grid, Market, Sweep, parse_range, run_sweep
from warehouse.providers import SyntheticMarket

CAPITAL, QUANTITY = 1e12, 100.0
COSTS = CostModel(commission_bps=1.0, half_spread_bps=1.0, slippage_bps=2.0, participation=None)
NO_LIMITS = RiskLimits.model_construct(
    **{**RiskLimits().model_dump(), **dict.fromkeys(
        ("max_order_notional", "max_order_quantity", "max_position_notional",
         "max_symbol_weight", "max_sector_weight", "max_gross_exposure", "max_net_exposure",
         "max_orders_per_bar", "reducing_drawdown", "halt_drawdown"))}
)  # fmt: skip


def market_of(n_symbols: int, n_bars: int, seed: int = 11) -> Market:
    raw = SyntheticMarket(n_symbols=n_symbols, n_bars=n_bars, seed=seed).load()
    instruments = {i.symbol: i for i in raw.instruments}
    return Market.from_feed(BarFeed.from_frame(raw.frame, instruments), instruments)


def ours(market: Market, grid: Grid) -> tuple[Sweep, Any]:
    sweep = Sweep(market, grid, COSTS, NO_LIMITS, CAPITAL)
    return sweep, run_sweep(sweep)


def theirs(market: Market, grid: Grid):
    """vectorbt: the cells' moving averages, signals and one portfolio grouped by cell."""
    close = pd.DataFrame(market.close, index=market.times, columns=market.symbols)
    open_ = pd.DataFrame(market.open, index=market.times, columns=market.symbols)
    cells = grid.cells()
    fast = vbt.MA.run(close, [c["fast"] for c in cells], short_name="fast", run_unique=True)
    slow = vbt.MA.run(close, [c["slow"] for c in cells], short_name="slow", run_unique=True)
    above = fast.ma_above(slow)
    entries = above.vbt.signals.fshift(1)  # decided at a close, sent for the next open
    exits = (~above).vbt.signals.fshift(1)
    per_cell = (1, len(cells))  # columns: cell-major, symbols within
    portfolio = vbt.Portfolio.from_signals(
        close=pd.DataFrame(np.tile(close.to_numpy(), per_cell), close.index, above.columns),
        entries=entries,
        exits=exits,
        price=pd.DataFrame(np.tile(open_.to_numpy(), per_cell), close.index, above.columns),
        size=QUANTITY,
        size_type="amount",
        fees=COSTS.commission_bps * 1e-4,
        slippage=(COSTS.half_spread_bps + COSTS.slippage_bps) * 1e-4,
        init_cash=CAPITAL,
        group_by=["fast_window", "slow_window"],
        cash_sharing=True,
        freq="1D",
    )
    metrics = (portfolio.total_return(), portfolio.sharpe_ratio(), portfolio.max_drawdown())
    return portfolio, metrics


def timed(fn, repeats: int) -> tuple[float, Any]:
    fn()  # warm-up: numba compiles (or loads its cache)
    seconds, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), out


def their_fills(portfolio, market: Market, cells: list[dict]) -> dict[tuple, list[tuple]]:
    """Each cell's fills from vectorbt's order records: (symbol, bar, side, quantity, price,
    fee), keyed by (fast, slow)."""
    columns = portfolio.wrapper.columns
    out: dict[tuple, list[tuple]] = {(c["fast"], c["slow"]): [] for c in cells}
    for r in portfolio.orders.values:
        f, s, symbol = columns[r["col"]]
        side = "buy" if r["side"] == 0 else "sell"
        out[(f, s)].append((symbol, int(r["idx"]), side, r["size"], r["price"], r["fees"]))
    return out


def compare_fills(sweep: Sweep, portfolio, market: Market) -> dict[str, Any]:
    theirs_by_cell = their_fills(portfolio, market, sweep.cells)
    position = {ts.isoformat(): i for i, ts in enumerate(market.times)}
    compared = mismatched = 0
    first_mismatch = None
    for index, cell in enumerate(sweep.cells):
        mine = [(f["symbol"], position[f["ts"]], f["side"], f["quantity"], f["price"], f["fee"])
                for f in sweep.fills(index)]  # fmt: skip
        other = theirs_by_cell[(cell["fast"], cell["slow"])]
        mine.sort(key=lambda f: (f[1], f[0]))
        other.sort(key=lambda f: (f[1], f[0]))
        compared += len(mine)
        same = len(mine) == len(other) and all(
            a[:4] == b[:4]
            and np.isclose(a[4], b[4], rtol=1e-9, atol=0)
            and np.isclose(a[5], b[5], rtol=1e-9, atol=1e-12)
            for a, b in zip(mine, other, strict=True)
        )
        if not same:
            mismatched += 1
            first_mismatch = first_mismatch or {"cell": cell, "ours": mine[:3], "vbt": other[:3]}
    return {"cells": len(sweep.cells), "fills": compared, "cells_differing": mismatched,
            "identical": mismatched == 0, "first_difference": first_mismatch}  # fmt: skip


def universe(console: Console, n_symbols: int, n_bars: int, grid: Grid, repeats: int) -> dict:
    """One universe: both sides timed on the same grid, then every cell's fills compared."""
    market = market_of(n_symbols, n_bars)
    n_cells, n_bars = len(grid.cells()), len(market.times)
    with console.status(f"ours: {n_symbols} x {n_bars}"):
        our_s, (sweep, result) = timed(lambda: ours(market, grid), repeats)
    with console.status(f"vectorbt: {n_symbols} x {n_bars}"):
        their_s, (portfolio, _) = timed(lambda: theirs(market, grid), repeats)
    with console.status("comparing every cell's fills"):
        fills = compare_fills(sweep, portfolio, market)
    return {
        "symbols": n_symbols,
        "bars": n_bars,
        "cells": n_cells,
        "ours": _rate(our_s, n_bars, n_cells, n_symbols),
        "vectorbt": _rate(their_s, n_bars, n_cells, n_symbols),
        "ratio": their_s / our_s,
        "fills": fills,
        "best_cell": result.cells[result.best],
        "deflated_sharpe": result.deflated.to_dict() if result.deflated else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--bars", type=int, nargs="+", default=[2000, 500])
    parser.add_argument("--fast", default="5:50:5")
    parser.add_argument("--slow", default="20:200:10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 symbols x 600 bars, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.symbols, args.bars, args.repeats = [4], [600], 1
    if len(args.symbols) != len(args.bars):
        parser.error("--symbols and --bars pair up: give as many of each")
    console = Console()
    started = time.perf_counter()
    grid = Grid(parse_range(args.fast, "fast"), parse_range(args.slow, "slow"), "fixed",
                (QUANTITY,))  # fmt: skip
    sizes = zip(args.symbols, args.bars, strict=True)
    runs = [universe(console, n, b, grid, args.repeats) for n, b in sizes]
    for run in runs:
        _print(console, run)
    figures = {
        "grid": {"fast": args.fast, "slow": args.slow, "cells": len(grid.cells())},
        "repeats": args.repeats,
        "vectorbt_version": vbt.__version__,
        "universes": runs,
        "total_s": time.perf_counter() - started,
    }
    write("sweep", figures, console)


def _rate(seconds: float, bars: int, cells: int, symbols: int) -> dict[str, float]:
    return {"seconds": seconds, "bar_cells_per_s": bars * cells / seconds,
            "symbol_bar_cells_per_s": bars * cells * symbols / seconds}  # fmt: skip


def _print(console: Console, f: dict[str, Any]) -> None:
    title = f"{f['cells']} cells x {f['bars']} bars x {f['symbols']} symbols"
    table = Table("engine", "seconds", "bars x cells / s", "x symbols / s", title=title)
    for name in ("ours", "vectorbt"):
        r = f[name]
        table.add_row(name, f"{r['seconds']:.3f}", f"{r['bar_cells_per_s']:,.0f}",
                      f"{r['symbol_bar_cells_per_s']:,.0f}")  # fmt: skip
    console.print(table)
    fills = f["fills"]
    console.print(
        f"ours / vectorbt throughput: {f['ratio']:.2f}x; fills"
        f" {'identical' if fills['identical'] else 'DIFFER'}: {fills['fills']:,} fills of"
        f" {fills['cells']} cells compared, {fills['cells_differing']} cells differ",
        highlight=False,
    )


if __name__ == "__main__":
    main()
