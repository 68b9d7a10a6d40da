"""Feature-store speed: (a) dbt full refresh vs incremental after one new day; (b) the online
engine's symbol-bar updates per second vs pandas rolling recomputation of the same features.

(a) loads N synthetic symbols x B daily bars minus the last day, times a full refresh, appends the
last day and times the incremental run (the two builds run on the same server in the same run).
(b) feeds cross-sections of S symbols through ``transforms.online.OnlineFeatureEngine`` and, as the
baseline, recomputes the same windows with pandas rolling over the history at each new bar. The
engine runs on one core (numba kernels without ``parallel``, no BLAS); ``cpu_per_wall`` (process
CPU time over wall time of the timed loop) shows it: above 1 would mean a second core, below 1
that the core was shared. Each update is timed twice: wall clock (what a caller waits) and the
thread's CPU time (``cpu_*``: the work of one core, steadier on a busy machine).

    python -m bench.features [--symbols 500] [--bars 2520] [--online-symbols 500 5000]
                             [--online-bars 300] [--skip-dbt] [--skip-online]

A run that skips a part keeps that part's last figures in bench/results/features.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import psycopg
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.db import drop_database, recreate_database
from warehouse.ingest import ingest
from warehouse.providers import SyntheticMarket
from warehouse.providers.base import FrameProvider
from warehouse.schema import migrate
from warehouse.settings import get_settings

TARGET_UPDATES_PER_S = 1_000_000  # issue 29: symbol-bar updates per second at 5,000 symbols


def bench_dbt(console: Console, n_symbols: int, n_bars: int) -> dict:
    from transforms.dbt_runner import build

    market = SyntheticMarket(n_symbols=n_symbols, n_bars=n_bars, freq="1D", seed=3)
    raw = market.load()
    ts = pd.to_datetime(raw.frame["ts"])
    last = ts.max()
    url = recreate_database("bench_features", get_settings())
    migrate(url)
    with console.status(f"loading {n_symbols} x {n_bars - 1} bars"):
        ingest(FrameProvider(raw).where(ts < last), url, get_settings())
    with console.status("dbt run --full-refresh"):
        full = build(url, full_refresh=True, tests=False)
    assert full.success, [(n.name, n.message) for n in full.failures()]
    with console.status("dbt test (full tables)"):
        tests = build(url, select="resource_type:test")
    assert tests.success, [(n.name, n.message) for n in tests.failures()]
    with console.status("appending one day"):
        ingest(FrameProvider(raw).where(ts == last), url, get_settings())
    with console.status("dbt run (incremental)"):
        incremental = build(url, tests=False)
    assert incremental.success, [(n.name, n.message) for n in incremental.failures()]
    with psycopg.connect(url) as conn:
        rows = conn.execute("select count(*) from features.bar_features").fetchone()[0]
    drop_database(url)

    def per_model(report) -> dict[str, float]:
        return {n.name: n.seconds for n in report.nodes if n.resource_type == "model"}

    return {
        "symbols": n_symbols,
        "bars": n_bars,
        "rows": rows,
        "full_refresh_s": full.seconds,
        "incremental_s": incremental.seconds,
        "ratio": incremental.seconds / full.seconds,
        "tests_s": tests.seconds,
        "full_refresh_models_s": per_model(full),
        "incremental_models_s": per_model(incremental),
    }


def _cross_sections(n_symbols: int, n_bars: int) -> dict[str, np.ndarray]:
    frame = SyntheticMarket(n_symbols=n_symbols, n_bars=n_bars, freq="1D", seed=5).generate()
    frame = frame.sort_values(["ts", "symbol"])
    shape = (n_bars, n_symbols)
    out = {k: frame[k].to_numpy(float).reshape(shape) for k in ("open", "high", "low", "close")}
    out["volume"] = frame["volume"].to_numpy(float).reshape(shape)
    out["ts"] = pd.to_datetime(frame["ts"], utc=True).to_numpy().reshape(shape)[:, 0]
    out["symbols"] = frame["symbol"].to_numpy().reshape(shape)[0]
    return out


def bench_online(n_symbols: int, n_bars: int) -> dict:
    from transforms.online import OnlineFeatureEngine

    data = _cross_sections(n_symbols, n_bars)
    engine = OnlineFeatureEngine(list(data["symbols"]))
    stamps = [pd.Timestamp(ts) for ts in data["ts"]]
    times, cpu = [], []
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for i in range(n_bars):
        start, start_cpu = time.perf_counter(), time.thread_time()
        engine.update(
            stamps[i],
            data["open"][i],
            data["high"][i],
            data["low"][i],
            data["close"][i],
            data["volume"][i],
        )
        cpu.append(time.thread_time() - start_cpu)
        times.append(time.perf_counter() - start)
    cpu_per_wall = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    steady = np.array(times[len(times) // 5 :])  # after the first windows fill (and compiling)
    steady_cpu = np.array(cpu[len(cpu) // 5 :])
    return {
        "symbols": n_symbols,
        "bars": n_bars,
        "columns": len(engine.columns),
        "updates_per_s": n_symbols / steady.mean(),
        "mean_ms": steady.mean() * 1e3,
        "p50_ms": float(np.percentile(steady, 50) * 1e3),
        "p99_ms": float(np.percentile(steady, 99) * 1e3),
        "cpu_updates_per_s": n_symbols / steady_cpu.mean(),
        "cpu_mean_ms": steady_cpu.mean() * 1e3,
        "cpu_p99_ms": float(np.percentile(steady_cpu, 99) * 1e3),
        "cpu_per_wall": cpu_per_wall,
    }


def pandas_recompute(n_symbols: int, n_bars: int, new_bars: int = 5) -> dict:
    """Baseline: on each new bar, recompute the rolling features over the history with pandas."""
    data = _cross_sections(n_symbols, n_bars)
    close = pd.DataFrame(data["close"])
    high, low, volume = (pd.DataFrame(data[k]) for k in ("high", "low", "volume"))
    times = []
    for end in range(n_bars - new_bars, n_bars):
        start = time.perf_counter()
        c, h, lo, v = (x.iloc[: end + 1] for x in (close, high, low, volume))
        ret = np.log(c / c.shift())
        for w in (5, 10, 20, 50, 200):
            c.rolling(w).mean()
        for w in (12, 26, 50):
            c.ewm(span=w, adjust=False).mean()
        c.rolling(20).std(ddof=0)
        for w in (14, 20, 50):
            h.rolling(w).max()
            lo.rolling(w).min()
        v.rolling(20).mean()
        v.rolling(20).std()
        ret.rolling(20).std()
        ret.rolling(60).std()
        mkt = ret.mean(axis=1)
        ret.rolling(60).corr(mkt)
        times.append(time.perf_counter() - start)
    seconds = float(np.mean(times))
    return {"symbols": n_symbols, "history_bars": n_bars, "updates_per_s": n_symbols / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--online-symbols", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--online-bars", type=int, default=300)
    parser.add_argument("--skip-dbt", action="store_true")
    parser.add_argument("--skip-online", action="store_true")
    args = parser.parse_args()
    console = Console(width=120)
    results: dict = {}

    if not args.skip_dbt:
        d = results["dbt"] = bench_dbt(console, args.symbols, args.bars)
        d["params"] = {"symbols": args.symbols, "bars": args.bars}
        table = Table("dbt", "rows", "seconds", title="dbt feature store (models, then tests)")
        table.add_row("run --full-refresh", f"{d['rows']:,}", f"{d['full_refresh_s']:.1f}")
        table.add_row("run, one new day", f"{args.symbols:,}", f"{d['incremental_s']:.1f}")
        table.add_row("test (all data tests)", f"{d['rows']:,}", f"{d['tests_s']:.1f}")
        console.print(table)
        slowest = sorted(d["incremental_models_s"].items(), key=lambda kv: -kv[1])[:4]
        console.print(
            "incremental run, slowest models: "
            + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in slowest)
        )
        console.print(
            f"incremental / full = [bold]{d['ratio']:.1%}[/] (target <= 5%: "
            f"{'met' if d['ratio'] <= 0.05 else 'NOT met'})"
        )

    if not args.skip_online:
        results["online"] = []
        table = Table(
            "symbols", "updates/s", "mean ms", "p50 ms", "p99 ms", "CPU updates/s",
            "CPU p99 ms", "pandas updates/s", "speed-up", "target",
            title="online engine (per cross-section update, one core)",
        )  # fmt: skip
        for n in args.online_symbols:
            console.print(f"online engine, {n} symbols")  # no spinner: its thread would count
            o = bench_online(n, args.online_bars)  # in cpu_per_wall
            with console.status(f"pandas recompute, {n} symbols"):
                p = pandas_recompute(n, args.online_bars)
            o["pandas_updates_per_s"] = p["updates_per_s"]
            o["pandas_history_bars"] = p["history_bars"]
            o["speedup_vs_pandas"] = o["updates_per_s"] / p["updates_per_s"]
            results["online"].append(o)
            table.add_row(
                f"{n:,}",
                f"{o['updates_per_s']:,.0f}",
                f"{o['mean_ms']:.2f}",
                f"{o['p50_ms']:.2f}",
                f"{o['p99_ms']:.2f}",
                f"{o['cpu_updates_per_s']:,.0f}",
                f"{o['cpu_p99_ms']:.2f}",
                f"{p['updates_per_s']:,.0f}",
                f"{o['speedup_vs_pandas']:.0f}x",
                f"{TARGET_UPDATES_PER_S:,}" if n == 5000 else "",
            )
        console.print(table)
        top = results["online"][-1]
        for label, key in (("wall clock", "updates_per_s"), ("CPU time", "cpu_updates_per_s")):
            met = top[key] >= TARGET_UPDATES_PER_S
            console.print(
                f"{top['symbols']:,} symbols, {label}: {top[key]:,.0f} symbol-bar updates/s "
                f"(target >= {TARGET_UPDATES_PER_S:,}: {'met' if met else 'NOT met'})"
            )
        console.print(f"CPU/wall {top['cpu_per_wall']:.2f} (<= 1: one core)")

    targets = {
        "incremental_over_full": 0.05,
        "online_updates_per_s_at_5000": TARGET_UPDATES_PER_S,
    }
    write("features", {**results, "targets": targets}, console, merge=True)


if __name__ == "__main__":
    main()
