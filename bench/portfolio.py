"""Portfolio construction and risk speed: (a) each optimizer's solve time for 50, 200 and 500
assets, next to the same problem as skfolio states it (``solver="skfolio"``, the old path) and
the closed-form unconstrained minimum variance (numpy) on the same returns, with the L1
distance between the two paths' weights; (b) VaR/ES of a 500-asset portfolio by Monte Carlo
with 10,000 paths, next to historical VaR/ES on the same returns; (c) whole rebalances of 500
assets in the engine for every method, by both paths (optimize, the pre-trade risk checks of
every order, the orders built, journaled and acknowledged by the simulated venue): the worst
bar's tick-to-order, which the target (< 1 s for every method) is about.

(a) and (b) use the synthetic market's daily returns (a factor model with regimes and jumps),
252 bars per estimate, the default constraints (long-only, max weight 0.35 - above 1/n for all
sizes, budget 0.98) and the default covariance (Ledoit-Wolf). Solve time is the median of
``--repeats`` fits. (c) loads 500 symbols x ``--bars`` synthetic bars into a scratch database
(bench_portfolio, on the QTIS server: `qtis db up`), backtests buy-and-hold sized by each method
with a rebalance every 21 bars and free costs, and reads each rebalance bar's tick-to-order from
the journal.

    python -m bench.portfolio [--sizes 50 200 500] [--repeats 3] [--bars 330] [--quick]
                              [--no-old-engine]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings

METHODS = ["equal", "min-variance", "risk-parity", "hrp", "mean-cvar", "black-litterman"]
SOLVERS = ["fast", "skfolio"]  # this path, and the old one as the in-run baseline
LOOKBACK, PATHS, TARGET_REBALANCE_S = 252, 10_000, 1.0


def synthetic_returns(n: int, bars: int, seed: int) -> pd.DataFrame:
    from warehouse.providers import SyntheticMarket

    frame = SyntheticMarket(n_symbols=n, n_bars=bars + 1, seed=seed).generate()
    closes = frame.pivot(index="ts", columns="symbol", values="close")
    return closes.pct_change().iloc[1:]


def timed(fn, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def closed_form_min_variance(returns: pd.DataFrame) -> np.ndarray:
    cov = np.cov(returns.to_numpy(), rowvar=False)
    w = np.linalg.solve(cov, np.ones(len(cov)))
    return w / w.sum()


def bench_solvers(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    from trading_runtime.portfolio.optimizers import PortfolioConfig, PortfolioOptimizer

    rows = []
    for n in sizes:
        returns = synthetic_returns(n, LOOKBACK, seed=n)
        views = np.where(np.arange(n) % 5 == 0, 0.001, np.nan)  # views on a fifth of them
        baseline = timed(lambda r=returns: closed_form_min_variance(r), repeats)
        for method in METHODS:
            row: dict[str, Any] = {"assets": n, "method": method, "baseline_s": baseline}
            weights = {}
            for solver in SOLVERS:
                optimizer = PortfolioOptimizer(PortfolioConfig(method=method, solver=solver))

                def fit(o=optimizer, r=returns, v=views):
                    return o.fit(r, views=v, confidence=0.3)

                row[f"{solver}_s"] = timed(fit, repeats)
                weights[solver] = optimizer.weights_.copy()
            row |= {"solve_s": row["fast_s"], "ratio": row["fast_s"] / baseline,
                    "speedup": row["skfolio_s"] / row["fast_s"],
                    "l1": float(np.abs(weights["fast"] - weights["skfolio"]).sum())}  # fmt: skip
            rows.append(row)
    return rows


def bench_var(n: int, repeats: int) -> dict[str, Any]:
    from trading_runtime.portfolio.risk import portfolio_var_es

    returns = synthetic_returns(n, LOOKBACK, seed=3).to_numpy()
    weights = np.full(n, 1.0 / n)
    out: dict[str, Any] = {"assets": n, "paths": PATHS}
    for method in ("historical", "parametric", "monte-carlo"):
        options = {"paths": PATHS, "seed": 0} if method == "monte-carlo" else {}

        def compute(m=method, o=options):
            return portfolio_var_es(returns, weights, level=0.99, horizon=1, method=m, **o)

        seconds = timed(compute, repeats)
        var, es = compute()
        out[method] = {"seconds": seconds, "var_99": float(var), "es_99": float(es)}
    out["ratio_mc_vs_historical"] = out["monte-carlo"]["seconds"] / out["historical"]["seconds"]
    return out


def bench_engine(console: Console, n: int, bars: int, solvers: list[str]) -> list[dict[str, Any]]:
    from warehouse.db import drop_database, recreate_database
    from warehouse.ingest import ingest
    from warehouse.providers import SyntheticMarket
    from warehouse.schema import migrate

    url = recreate_database("bench_portfolio", get_settings())
    rows = []
    try:
        migrate(url)
        with console.status(f"loading {n} x {bars} synthetic bars"):
            ingest(SyntheticMarket(n_symbols=n, n_bars=bars, seed=11), url, get_settings())
        for method in METHODS:
            for solver in solvers:
                with console.status(f"engine: {n} assets, {method}, {solver}"):
                    rows.append(engine_run(url, n, method, solver))
    finally:
        drop_database(url)
    return rows


def engine_run(url: str, n: int, method: str, solver: str) -> dict[str, Any]:
    """One backtest sized by ``method``: each rebalance bar's solve and tick-to-order."""
    from trading_runtime import events as ev
    from trading_runtime.config import RunConfig, StrategyConfig
    from trading_runtime.journal import Journal
    from trading_runtime.runs import run

    portfolio = {"method": method, "lookback": LOOKBACK, "max_weight": 0.35, "solver": solver}
    strategy = StrategyConfig(
        name="p", signal="buy-and-hold", portfolio=portfolio, capital=1e9,
        limits={"max_orders_per_bar": None, "max_order_notional": None,
                "max_position_notional": None},
    )  # fmt: skip
    stream = f"bench-{method}-{solver}"
    config = RunConfig(stream=stream, strategies=[strategy], free_costs=True,
                       warmup_bars=LOOKBACK + 1)  # fmt: skip
    started = time.perf_counter()
    run(url, config)
    total = time.perf_counter() - started
    journal = Journal(url, stream)
    try:
        solves = {e.step: e for e in journal.read(types=[ev.PORTFOLIO_REBALANCED])}
        acks = list(journal.read(types=[ev.ORDER_SUBMITTED]))
        accepted = list(journal.read(types=[ev.ORDER_ACCEPTED]))
    finally:
        journal.close()
    step_of = {a.order.client_id: a.step for a in acks}
    per_bar: dict[int, dict[str, float]] = {}
    for a in accepted:
        step = step_of.get(a.client_id)
        if step in solves and a.tick_to_order_us is not None:
            bar = per_bar.setdefault(step, {"orders": 0, "tick_to_order_s": 0.0})
            bar["orders"] += 1
            bar["tick_to_order_s"] = max(bar["tick_to_order_s"], a.tick_to_order_us / 1e6)
    rebalances = [
        {"step": s, "solve_ms": solves[s].solve_ms, **per_bar[s]} for s in sorted(per_bar)
    ]
    worst = max((r["tick_to_order_s"] for r in rebalances), default=None)
    return {"method": method, "solver": solver, "assets": n, "rebalances": rebalances,
            "worst_rebalance_s": worst, "run_s": total}  # fmt: skip


def show(console: Console, results: dict[str, Any]) -> None:
    title = "optimizer solve time (median)"
    table = Table("assets", "method", "solve", "old path (skfolio)", "speedup", "L1 to old",
                  "closed-form min-var", "ratio", title=title)  # fmt: skip
    for r in results["solvers"]:
        table.add_row(str(r["assets"]), r["method"], f"{r['fast_s'] * 1e3:,.1f} ms",
                      f"{r['skfolio_s'] * 1e3:,.1f} ms", f"{r['speedup']:,.1f}x",
                      f"{r['l1']:.1e}", f"{r['baseline_s'] * 1e3:,.2f} ms",
                      f"{r['ratio']:,.0f}x")  # fmt: skip
    console.print(table)
    var = results["var"]
    title = f"portfolio VaR/ES, {var['assets']} assets, {var['paths']:,} MC paths"
    table = Table("method", "time", "VaR 99% 1-day", "ES 99% 1-day", title=title)
    for method in ("historical", "parametric", "monte-carlo"):
        m = var[method]
        table.add_row(method, f"{m['seconds'] * 1e3:,.1f} ms", f"{m['var_99']:.4%}",
                      f"{m['es_99']:.4%}")  # fmt: skip
    console.print(table)
    table = Table("method", "path", "rebalances", "orders", "solve", "tick-to-order",
                  f"< {TARGET_REBALANCE_S:.0f} s", title="the worst rebalance bar in the engine"
                  " (optimize + risk checks + orders; orders: mean per rebalance)")  # fmt: skip
    for r in results["engine"]:
        reb = r["rebalances"]
        orders = np.mean([x["orders"] for x in reb]) if reb else 0
        solve = max((x["solve_ms"] for x in reb), default=float("nan"))
        worst = r["worst_rebalance_s"]
        met = "met" if worst is not None and worst < TARGET_REBALANCE_S else "[bold]NOT met[/]"
        table.add_row(r["method"], r["solver"], str(len(reb)), f"{orders:,.0f}",
                      f"{solve:,.0f} ms", f"{worst:.3f} s" if worst is not None else "-",
                      met)  # fmt: skip
    console.print(table)


def targets(results: dict[str, Any], n: int) -> dict[str, Any]:
    """Per method, the worst rebalance bar of this path against the target, and the old path's."""
    out = {}
    for method in METHODS:
        runs = {r["solver"]: r for r in results["engine"] if r["method"] == method}
        worst = runs["fast"]["worst_rebalance_s"]
        old = runs.get("skfolio", {}).get("worst_rebalance_s")
        out[f"rebalance {method}"] = {
            "target": f"rebalancing {n} assets in < {TARGET_REBALANCE_S:.0f} s",
            "measured_s": worst,
            "old_path_s": old,
            "met": worst is not None and worst < TARGET_REBALANCE_S,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bars", type=int, default=330, help="engine run: bars per symbol")
    parser.add_argument("--quick", action="store_true", help="50 and 100 assets, 1 repeat")
    parser.add_argument("--no-old-engine", action="store_true",
                        help="engine runs of this path only, not the old one as well")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = [50, 100], 1
    console = Console()
    started = time.perf_counter()
    n = max(args.sizes)
    solvers = SOLVERS[:1] if args.no_old_engine else SOLVERS
    results: dict[str, Any] = {"solvers": bench_solvers(args.sizes, args.repeats)}
    results["var"] = bench_var(n, args.repeats)
    results["engine"] = bench_engine(console, n, args.bars, solvers)
    results["total_s"] = time.perf_counter() - started
    show(console, results)
    results["targets"] = targets(results, n)
    met = all(t["met"] for t in results["targets"].values())
    worst = max((t["measured_s"] or 0) for t in results["targets"].values())
    console.print(f"rebalance of {n} assets, worst over methods: {worst:.3f} s"
                  f" -> {'met' if met else '[bold]NOT met[/]'} for every method")  # fmt: skip
    params = {
        "sizes": args.sizes,
        "repeats": args.repeats,
        "lookback": LOOKBACK,
        "paths": PATHS,
        "engine_bars": args.bars,
        "engine_paths": solvers,
    }
    write("portfolio", {"params": params, **results}, console)


if __name__ == "__main__":
    main()
