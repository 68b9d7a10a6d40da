"""Model-threshold sweeps: ``qtis trade sweep --signal model`` against the engine's backtests of
the same cells, in the same run, with the fills compared (vectorbt has no such model).

A synthetic universe (default 10 symbols x 1000 daily bars, ``providers.SyntheticMarket``) in
the scratch databases bench_sweep_model and bench_sweep_model_mlflow on the QTIS server
(dropped at the end), and ``bench.runtime``'s champion: a small XGBoost trained on its dbt
features and forced to @champion. Every run trades in sample from the first bar (speed, not
returns, as ``bench.runtime``'s model run), fixed size, long or short (``allow_short``: the
threshold decides every entry and exit; this champion's forecasts are small against the daily
volatility and nearly all negative, so vol-target sizing or long only would trade little), the
default costs and limits but the drawdown states.

Ours: ``load_model_market`` (bars, the online features and the champion's forecasts, replayed
once) and ``run_sweep`` over ``--thresholds`` (default: 0 and the 5%..95% quantiles of the
champion's |forecast|, so that each drops a share of them whatever their scale) x
``--quantities``, timed together from the
database to every cell's metrics, median of ``--repeats`` after a warm-up. The baseline: the
event engine's backtest of one cell, timed as ``bench.runtime`` times it (the loop only, the
engine built outside the timing), for the lowest, middle and highest threshold; a grid of N cells
costs N of those. Ratio: N x the median backtest / the sweep. The backtests' fills are compared
with those cells' as (symbol, bar, side, quantity) exactly and price to 1e-9 relative.

    python -m bench.sweep_model [--symbols 10] [--bars 1000] [--thresholds 0:0.002:0.0001]
                                [--quantities 50,100,200] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from dataclasses import replace
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from bench._results import write
from bench.runtime import model_config, prepare, timed_engine, train_champion
from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from trading_runtime.analytics.conventions import conventions
from trading_runtime.instruments import load_instruments
from trading_runtime.runs import model_client
from trading_runtime.settings import RiskLimits, RuntimeSettings
from trading_runtime.sweep import Grid, Sweep, parse_range, run_sweep
from trading_runtime.sweep_model import load_model_market
from warehouse.db import drop_database, recreate_database, sqlalchemy_url
from warehouse.settings import get_settings


def sweep_once(url: str, grid: Grid, config) -> tuple[Sweep, Any]:
    """The champion's forecasts replayed and every cell traded, as ``qtis trade sweep`` does."""
    runtime, serving = RuntimeSettings(), ServingSettings()
    predictor = model_client(url, None, serving, TrackingSettings())
    market = load_model_market(url, load_instruments(url), predictor, None, None,
                               config.warmup_bars, batch=serving.serve_max_windows,
                               in_sample=True)  # fmt: skip
    limits = RiskLimits(**config.strategies[0].limits)
    per_year = conventions(periods_per_year=runtime.bars_per_year)
    sweep = Sweep(market, grid, config.cost_model(), limits, runtime.capital, per_year,
                  runtime.min_trade)  # fmt: skip
    return sweep, run_sweep(sweep)


def same_fills(ours: list[dict], theirs: list[dict]) -> bool:
    key = itemgetter("ts", "symbol")
    a, b = sorted(ours, key=key), sorted(theirs, key=key)
    return len(a) == len(b) and all(
        (x["symbol"], x["ts"], x["side"], x["quantity"]) == (y["symbol"], y["ts"], y["side"],
                                                             y["quantity"])
        and math.isclose(x["price"], y["price"], rel_tol=1e-9)
        for x, y in zip(a, b, strict=True)
    )  # fmt: skip


def quantile_thresholds(sweep: Sweep, count: int) -> tuple[float, ...]:
    """0 and the |forecast| quantiles up to 95%: thresholds that each drop a share of the
    champion's forecasts, whatever their scale."""
    forecast = np.abs(sweep.market.forecast)
    levels = np.quantile(forecast[np.isfinite(forecast)], np.linspace(0, 0.95, count))
    return tuple(sorted({0.0, *(float(f"{v:.3g}") for v in levels[1:])}))


def measure(console: Console, url: str, grid: Grid, repeats: int) -> dict[str, Any]:
    base = model_config(mode="backtest", stream="sweep-model", warmup_bars=0)
    strategy = base.strategies[0]
    short = strategy.model_copy(update={"limits": strategy.limits | {"allow_short": True}})
    base = base.model_copy(update={"strategies": [short]})
    warm, _ = sweep_once(url, grid, base)  # warm-up: numba compiles (or loads its cache)
    if not grid.thresholds:
        grid = replace(grid, thresholds=quantile_thresholds(warm, 20))
    seconds = []
    for turn in range(repeats):
        with console.status(f"sweep of {len(grid.cells())} cells (round {turn + 1})"):
            started = time.perf_counter()
            sweep, result = sweep_once(url, grid, base)
            seconds.append(time.perf_counter() - started)
    size = grid.sizes[len(grid.sizes) // 2]
    signed = sweep.market.forecast[sweep.market.first :]
    forecast = np.abs(signed)
    checked, engine_s = [], []
    for h in sorted({grid.thresholds[0], grid.thresholds[len(grid.thresholds) // 2],
                     grid.thresholds[-1]}):  # fmt: skip
        index = next(i for i, c in enumerate(sweep.cells) if c["threshold"] == h
                     and c["size"] == size)  # fmt: skip
        update = {"threshold": h, "sizing": "fixed", "quantity": size}
        strategy = base.strategies[0].model_copy(update=update)
        config = base.model_copy(update={"stream": f"sweep-model-{h:g}",
                                         "strategies": [strategy]})  # fmt: skip
        with console.status(f"engine backtest of the cell threshold {h:g}"):
            run = timed_engine(url, config)
        engine_s.append(run["seconds"])
        fills = sweep.fills(index)
        checked.append({"threshold": h, "size": size, "fills": len(fills),
                        "identical": same_fills(fills, run["fills"])})  # fmt: skip
    ours, backtest = statistics.median(seconds), statistics.median(engine_s)
    return {
        "cells": len(sweep.cells),
        "bars": len(sweep.market.times),
        "symbols": len(sweep.market.symbols),
        "sweep_s": ours,
        "sweep_rounds_s": seconds,
        "kernel_s": result.seconds,
        "backtest_s": backtest,
        "backtest_rounds_s": engine_s,
        "ratio": len(sweep.cells) * backtest / ours,
        "thresholds": list(grid.thresholds),
        "forecast_share": float(np.isfinite(forecast).mean()),  # of traded bar-symbols
        "forecast_abs_median": float(np.nanmedian(forecast)),
        "forecast_positive_share": float((signed > 0).sum() / np.isfinite(signed).sum()),
        "fills": checked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--bars", type=int, default=1000)
    parser.add_argument(
        "--thresholds", default=None, help="a range; default 0 and 19 |forecast| quantiles"
    )
    parser.add_argument("--quantities", default="50,100,200", help="fixed size, units")
    parser.add_argument("--estimators", type=int, default=30, help="XGBoost trees")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 symbols x 400 bars, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.symbols, args.bars, args.repeats = 5, 400, 1
    grid = Grid(
        sizing="fixed",
        sizes=parse_range(args.quantities, "quantities", False),
        signal="model",
        thresholds=parse_range(args.thresholds, "thresholds", False, zero=True)
        if args.thresholds
        else (),
    )
    console, started = Console(), time.perf_counter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # the sweep is measured, not the champion's serving latency: a probe's p99 on this shared
    # machine must not refuse the forced @champion
    os.environ.setdefault("QTIS_PROMOTION_LATENCY_BUDGET_MS", "1000")
    url = recreate_database("bench_sweep_model", get_settings())
    mlflow_url = recreate_database("bench_sweep_model_mlflow", get_settings())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["QTIS_MLFLOW_TRACKING_URI"] = sqlalchemy_url(mlflow_url)
            os.environ["QTIS_DATABASE_URL"] = url
            os.environ["QTIS_HOME"] = str(Path(tmp) / ".qtis")  # MLflow's artifacts
            prepare(console, url, args.symbols, args.bars, seed=21, garch=True)
            champion = train_champion(console, url, args.estimators, short=args.quick)
            figures = measure(console, url, grid, args.repeats)
    finally:
        drop_database(url)
        drop_database(mlflow_url)
    figures |= {"champion": champion, "repeats": args.repeats,
                "total_s": time.perf_counter() - started}  # fmt: skip
    checked = ", ".join(f"{c['threshold']:g}: {c['fills']}" for c in figures["fills"])
    console.print(
        f"{figures['cells']} cells x {figures['bars']} bars x {figures['symbols']} symbols:"
        f" sweep {figures['sweep_s']:.2f} s (kernel {figures['kernel_s']:.3f} s), one backtest"
        f" {figures['backtest_s']:.2f} s: {figures['ratio']:.1f}x the backtests of the grid;"
        f" fills identical: {all(c['identical'] for c in figures['fills'])} ({checked} fills)",
        highlight=False,
    )
    write("sweep_model", figures, console)


if __name__ == "__main__":
    main()
