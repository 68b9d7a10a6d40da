"""The whole chain on a synthetic universe: ingest, GARCH, the full feature build, one
incremental day, XGBoost with its purged walk-forward, a small LSTM on a sample of symbols,
promotion, a backtest of the champion over every symbol, forecasts for every symbol from the
prediction service, the drift check and a paper session. Each stage runs in a process of its own
(``bench.scale_stages``); its wall time and peak memory (the stage's process tree, sampled, and
its own high-water mark) are recorded.

Sizes are kept side by side in ``bench/results/scale.json``; with two sizes of the same number
of years there, the table shows how much faster than the data each stage's time grew (the
target: at most 1.3x from 500 to 2,000 symbols), the largest peak (target: under 8 GB) and the
whole chain's time (target: under 30 minutes).

    python -m bench.scale --symbols 500 [--years 5] [--database-url URL] [--home DIR]
    python -m bench.scale --symbols 2000 --years 5

Without ``--database-url`` the embedded server under ``--home`` holds the run; with it, the run
creates (and drops first) databases ``qtis_scale_<symbols>`` and ``mlflow_scale_<symbols>`` on
that server, never touching the user's own.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
from rich.console import Console
from rich.table import Table

from bench._results import RESULTS, write
from bench.scale_stages import STAGES, Universe
from warehouse.db import database_url, recreate_database, sqlalchemy_url, with_database
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

MARK = "SCALE-STAGE "
LOG4 = math.log(4)  # the two sizes: 500 and 2,000 symbols
TARGETS = {"growth": 1.3, "peak_gb": 8.0, "total_min": 30.0}


class PeakSampler:
    """The largest resident memory of a process and its descendants, sampled every
    ``interval`` seconds (a stage's own high-water mark is added by the runner: a peak shorter
    than the interval is not missed for the main process)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root, self.interval, self.peak = psutil.Process(pid), interval, 0
        self.loads: list[float] = []  # the machine's 1-minute load average, once a second
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # it ended between the two calls
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        every = max(1, round(1 / self.interval))
        for tick in itertools.count():
            if self._done.is_set():
                return
            if tick % every == 0:
                self.loads.append(os.getloadavg()[0])
            try:
                self.peak = max(self.peak, self._tree_rss())
            except psutil.Error:
                return
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


class ServerCPU:
    """CPU seconds the database server has used, when it runs on this machine (the embedded
    one, or a local external one): its postmaster's own, the backends it has reaped and those
    still running. None for a server elsewhere."""

    def __init__(self, url: str) -> None:
        with psycopg.connect(url) as conn:
            backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        try:
            self.postmaster = psutil.Process(backend).parent()
        except psutil.Error:  # not on this machine
            self.postmaster = None

    def seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        t = self.postmaster.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.postmaster.children():
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total


def run_stage(name: str, env: dict[str, str], log: Path, server: ServerCPU) -> dict[str, Any]:
    """One stage in its own process: wall seconds, CPU seconds (its own and the database
    server's), peak MB, the machine's load while it ran (others' work makes wall time noisy
    on a shared machine), what it reported."""
    command = [sys.executable, "-m", "bench.scale_stages", name]
    started, db_before = time.perf_counter(), server.seconds()
    with log.open("a") as out:
        out.write(f"\n=== {name}\n")
        out.flush()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=out, text=True)
        sampler = PeakSampler(child.pid)
        stdout, _ = child.communicate()
        seconds = time.perf_counter() - started
        sampled = sampler.stop()
        out.write(stdout)
    found = [json.loads(line[len(MARK) :]) for line in stdout.splitlines() if line.startswith(MARK)]
    if child.returncode != 0 or not found:
        raise RuntimeError(f"stage {name} failed (exit {child.returncode}): see {log}")
    peak, cpu = max(sampled, found[0].pop("maxrss_bytes")), found[0].pop("cpu_s")
    db = None if db_before is None else server.seconds() - db_before
    loads = sampler.loads or [os.getloadavg()[0]]
    return {"seconds": seconds, "cpu_s": cpu, "db_cpu_s": db, "peak_mb": peak / 2**20,
            "load_1m": {"mean": sum(loads) / len(loads), "max": max(loads)},
            "result": found[0]}  # fmt: skip


def server_info(url: str) -> dict[str, Any]:
    """The server the run measured: its version, TimescaleDB's (None without it), and the
    settings that change its speed."""
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        found = conn.execute(
            "select extversion from pg_extension where extname = 'timescaledb'"
        ).fetchone()
        settings = {
            name: conn.execute(f"show {name}").fetchone()[0]
            for name in ("shared_buffers", "work_mem", "synchronous_commit", "fsync")
        }
    return {"postgresql": version, "timescaledb": found and found[0], "settings": settings}


def databases(symbols: int, url: str | None, home: Path, fresh: bool) -> tuple[str, str]:
    """(warehouse URL, MLflow store URI) of this size's databases: new ones when ``fresh``,
    else those an earlier run left (to resume it)."""
    settings = WarehouseSettings(database_url=url, home=home)
    names = (f"qtis_scale_{symbols}", f"mlflow_scale_{symbols}")
    if not fresh:
        return with_database(database_url(settings), names[0]), sqlalchemy_url(
            with_database(database_url(settings), names[1])
        )
    warehouse = recreate_database(names[0], settings)
    mlflow = sqlalchemy_url(recreate_database(names[1], settings))
    migrate(warehouse)
    return warehouse, mlflow


def progress_file(home: Path, universe: Universe) -> Path:
    """The stages done so far by the run of this size in ``home``."""
    return home / f"scale-{universe.symbols}x{universe.years:g}y.json"


def run_chain(
    universe: Universe, url: str | None, home: Path, console: Console, done: dict[str, Any]
) -> dict:
    """Every stage not in ``done`` (an earlier run's stages, resumed on its databases)."""
    warehouse, mlflow = databases(universe.symbols, url, home, fresh=not done)
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTIS_")}
    env |= {"QTIS_DATABASE_URL": warehouse, "QTIS_MLFLOW_TRACKING_URI": mlflow,
            "QTIS_HOME": str(home), "SCALE_BENCH_SYMBOLS": str(universe.symbols),
            "SCALE_BENCH_YEARS": str(universe.years), "SCALE_BENCH_SEED": str(universe.seed),
            "SCALE_BENCH_LSTM_SYMBOLS": str(universe.lstm_symbols),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip
    log, server = home / f"scale-{universe.symbols}.log", ServerCPU(warehouse)
    state = progress_file(home, universe)
    stages: dict[str, Any] = dict(done)
    for name in (n for n in STAGES if n not in done):
        with console.status(f"{universe.symbols} symbols: {name}"):
            stages[name] = run_stage(name, env, log, server)
        state.write_text(json.dumps(stages, indent=1, default=str))  # what --from resumes
        s = stages[name]
        db = "" if s["db_cpu_s"] is None else f" + {s['db_cpu_s']:.1f} s database"
        console.print(f"  {name}: {s['seconds']:.1f} s wall, {s['cpu_s']:.1f} s CPU{db}, "
                      f"{s['peak_mb']:,.0f} MB  {s['result']}", highlight=False,
                      soft_wrap=True)  # fmt: skip
    return {
        "symbols": universe.symbols,
        "years": universe.years,
        "bars": universe.bars,
        "rows": universe.symbols * (universe.bars + 1),
        "lstm_symbols": universe.lstm_symbols,
        "stages": stages,
        "total_s": sum(s["seconds"] for s in stages.values()),
        "peak_mb": max(s["peak_mb"] for s in stages.values()),
        "log": str(log),
        "server": server_info(warehouse),
    }


def growth(small: dict, large: dict, measure: str = "seconds") -> dict[str, float]:
    """Per stage: how much faster than the data its ``measure`` (wall ``seconds``, or
    ``cpu_s``: the stage's and the database server's CPU) grew from ``small`` to ``large``
    (1.0: in proportion; a stage on a fixed sample grows less)."""
    data = large["rows"] / small["rows"]

    def cost(stage: dict) -> float:
        db = (stage.get("db_cpu_s") or 0.0) if measure == "cpu_s" else 0.0
        return stage[measure] + db

    return {
        name: (cost(large["stages"][name]) / cost(small["stages"][name])) / data
        for name in large["stages"]
        if measure in small["stages"].get(name, {})
    }


def key(run: dict) -> str:
    return f"{run['symbols']}x{run['years']:g}y"


def compare(runs: dict[str, dict], run: dict) -> tuple[dict | None, dict[str, dict]]:
    """The run of the same years closest to a quarter of ``run``'s symbols (or four times),
    and the growth of wall and CPU time from the smaller of the two to the larger."""
    others = [
        r for r in runs.values() if r["years"] == run["years"] and r["symbols"] != run["symbols"]
    ]
    if not others:
        return None, {}
    other = min(others, key=lambda r: abs(abs(math.log(r["symbols"] / run["symbols"])) - LOG4))
    small, large = sorted((other, run), key=lambda r: r["symbols"])
    return other, {m: growth(small, large, m) for m in ("seconds", "cpu_s")}


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" + ("" if value <= TARGETS["growth"] else " [red](over)[/]")


def print_table(run: dict, other: dict | None, ratios: dict[str, dict], console: Console) -> None:
    """Per stage: wall and CPU seconds and peak of this run (and of the other size), and
    how much faster than the data wall and CPU time grew."""
    columns = ["stage", f"{run['symbols']}: wall s", "cpu s (+db)", "peak MB"]
    if other is not None:
        columns += [f"{other['symbols']}: wall s", "cpu s (+db)", "peak MB", "growth wall", "cpu"]
    table = Table(*columns, title=f"scale: {run['years']:g} years of daily bars")

    def cells(s: dict) -> list[str]:
        cpu = s.get("cpu_s", float("nan")) + (s.get("db_cpu_s") or 0.0)
        return [f"{s['seconds']:,.1f}", f"{cpu:,.1f}", f"{s['peak_mb']:,.0f}"]

    for name, s in run["stages"].items():
        row = [name, *cells(s)]
        if other is not None and name in other["stages"]:
            row += cells(other["stages"][name])
            row += [_ratio(ratios["seconds"].get(name)), _ratio(ratios["cpu_s"].get(name))]
        table.add_row(*row)
    console.print(table)
    console.print(
        f"whole chain {run['total_s'] / 60:.1f} min (target {TARGETS['total_min']:g}), largest "
        f"peak {run['peak_mb'] / 1024:.2f} GB (target {TARGETS['peak_gb']:g})",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--lstm-symbols", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: the embedded server")
    parser.add_argument("--home", type=Path, default=None, help="default: a new temporary dir")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--from",
        dest="start",
        choices=list(STAGES),
        help="resume a run of this size at this stage, on its databases (give its --home)",
    )
    args = parser.parse_args()
    console = Console()
    home = (args.home or Path(tempfile.mkdtemp(prefix="qtis-scale-"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    universe = Universe(args.symbols, args.years, args.seed, args.lstm_symbols)
    path = RESULTS / "scale.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    done = {}
    if args.start:
        state = progress_file(home, universe)
        before = json.loads(state.read_text()) if state.exists() else {}
        wanted = list(STAGES)[: list(STAGES).index(args.start)]
        if not set(wanted) <= set(before):
            parser.error(f"--from {args.start}: {state} has no record of {wanted}")
        done = {n: before[n] for n in wanted}
    run = run_chain(universe, args.database_url, home, console, done)
    run["database"] = "external" if args.database_url else "embedded"
    run["resumed_from"] = args.start  # the stages before it are an earlier run's
    runs[key(run)] = run
    other, ratios = compare(runs, run)
    print_table(run, other, ratios, console)
    worst = max(ratios.get("seconds", {}).values(), default=None)
    write("scale", {"runs": runs, "latest": key(run), "growth": ratios,
                    "worst_wall_growth": worst, "targets": TARGETS,
                    "total_s": run["total_s"]}, console)  # fmt: skip


if __name__ == "__main__":
    main()
