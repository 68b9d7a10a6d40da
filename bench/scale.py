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
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from bench._results import RESULTS, write
from bench.scale_stages import STAGES, Universe
from warehouse.db import recreate_database, sqlalchemy_url
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

MARK = "SCALE-STAGE "
TARGETS = {"growth": 1.3, "peak_gb": 8.0, "total_min": 30.0}


class PeakSampler:
    """The largest resident memory of a process and its descendants, sampled every
    ``interval`` seconds (a stage's own high-water mark is added by the runner: a peak shorter
    than the interval is not missed for the main process)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root, self.interval, self.peak = psutil.Process(pid), interval, 0
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
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, self._tree_rss())
            except psutil.Error:
                return
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def run_stage(name: str, env: dict[str, str], log: Path) -> dict[str, Any]:
    """One stage in its own process: wall seconds, peak MB, what it reported."""
    command = [sys.executable, "-m", "bench.scale_stages", name]
    started = time.perf_counter()
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
    peak = max(sampled, found[0].pop("maxrss_bytes"))
    return {"seconds": seconds, "peak_mb": peak / 2**20, "result": found[0]}


def databases(symbols: int, url: str | None, home: Path) -> tuple[str, str]:
    """(warehouse URL, MLflow store URI) of fresh databases for this size."""
    settings = WarehouseSettings(database_url=url, home=home)
    warehouse = recreate_database(f"qtis_scale_{symbols}", settings)
    mlflow = sqlalchemy_url(recreate_database(f"mlflow_scale_{symbols}", settings))
    migrate(warehouse)
    return warehouse, mlflow


def run_chain(universe: Universe, url: str | None, home: Path, console: Console) -> dict:
    warehouse, mlflow = databases(universe.symbols, url, home)
    env = {key: value for key, value in os.environ.items() if not key.startswith("QTIS_")}
    env |= {"QTIS_DATABASE_URL": warehouse, "QTIS_MLFLOW_TRACKING_URI": mlflow,
            "QTIS_HOME": str(home), "QTIS_SCALE_SYMBOLS": str(universe.symbols),
            "QTIS_SCALE_YEARS": str(universe.years), "QTIS_SCALE_SEED": str(universe.seed),
            "QTIS_SCALE_LSTM_SYMBOLS": str(universe.lstm_symbols),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip
    log = home / f"scale-{universe.symbols}.log"
    stages: dict[str, Any] = {}
    for name in STAGES:
        with console.status(f"{universe.symbols} symbols: {name}"):
            stages[name] = run_stage(name, env, log)
        s = stages[name]
        console.print(f"  {name}: {s['seconds']:.1f} s, {s['peak_mb']:,.0f} MB  {s['result']}",
                      highlight=False, soft_wrap=True)  # fmt: skip
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
    }


def growth(small: dict, large: dict) -> dict[str, float]:
    """Per stage: how much faster than the data its time grew from ``small`` to ``large`` (1.0:
    in proportion; a stage on a fixed sample grows less)."""
    data = large["rows"] / small["rows"]
    return {
        name: (large["stages"][name]["seconds"] / small["stages"][name]["seconds"]) / data
        for name in large["stages"]
        if name in small["stages"]
    }


def key(run: dict) -> str:
    return f"{run['symbols']}x{run['years']:g}y"


def compare(runs: dict[str, dict], run: dict) -> tuple[dict | None, dict[str, float]]:
    """The run of the same years with the fewest symbols other than ``run``'s, and the growth
    from the smaller of the two to the larger."""
    others = [
        r for r in runs.values() if r["years"] == run["years"] and r["symbols"] != run["symbols"]
    ]
    if not others:
        return None, {}
    other = min(others, key=lambda r: abs(r["symbols"] * 4 - run["symbols"]))
    small, large = sorted((other, run), key=lambda r: r["symbols"])
    return other, growth(small, large)


def print_table(run: dict, other: dict | None, ratios: dict[str, float], console: Console) -> None:
    columns = ["stage", f"{run['symbols']} symbols (s)", "peak MB"]
    if other is not None:
        columns += [f"{other['symbols']} symbols (s)", "peak MB", "time growth / data growth"]
    table = Table(*columns, title=f"scale: {run['years']:g} years of daily bars")
    for name, s in run["stages"].items():
        cells = [name, f"{s['seconds']:,.1f}", f"{s['peak_mb']:,.0f}"]
        if other is not None and name in other["stages"]:
            o, ratio = other["stages"][name], ratios.get(name)
            mark = "" if ratio is None or ratio <= TARGETS["growth"] else " [red](over 1.3)[/]"
            cells += [f"{o['seconds']:,.1f}", f"{o['peak_mb']:,.0f}", f"{ratio:.2f}{mark}"]
        table.add_row(*cells)
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
    args = parser.parse_args()
    console = Console()
    home = (args.home or Path(tempfile.mkdtemp(prefix="qtis-scale-"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    universe = Universe(args.symbols, args.years, args.seed, args.lstm_symbols)
    run = run_chain(universe, args.database_url, home, console)
    run["database"] = "external" if args.database_url else "embedded"
    path = RESULTS / "scale.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    runs[key(run)] = run
    other, ratios = compare(runs, run)
    print_table(run, other, ratios, console)
    worst = max(ratios.values(), default=None)
    write("scale", {"runs": runs, "latest": key(run), "growth": ratios,
                    "worst_growth": worst, "targets": TARGETS,
                    "total_s": run["total_s"]}, console)  # fmt: skip


if __name__ == "__main__":
    main()
