"""Serving latency and throughput: the real BentoML service on loopback, single-window
``POST /predict`` requests from ``wrk`` (a C load generator in its own process, one thread) at
concurrency 1, 8 and 32, for an XGBoost and an LSTM champion (small), each window sent as JSON
and as an ``.npy`` body (``application/x-npy``), with adaptive batching on and off (the baseline,
measured in the same run, in turns); and, as an extra row, the LSTM at its default (seed) size
with ``.npy`` bodies. Each measurement also records the CPU the service's process tree, the load
generator and the whole machine used, as shares of the machine's cores, and the service's CPU
per request; each champion's model call is also timed alone, for 1 and for 32 windows, which
bounds what batching can gain.

    python -m bench.serving [--seconds 3] [--workers 1]

With ``--workers N`` other than 1 the figures go to ``bench/results/serving_workersN.json``.

Needs ``wrk`` (Debian: ``apt-get install wrk``). Uses scratch databases (bench_serving,
bench_serving_mlflow) on the QTIS server with the bundled sample.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import torch
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings

CONCURRENCY = (1, 8, 32)
ROUNDS = 2
# (label, registered name, version, bodies): the small models of record, and the LSTM at its
# default size, an extra row for a heavier model (the .npy body only, to keep the run short)
CHAMPIONS = (
    ("qtis-xgboost", "qtis-xgboost", "1", ("json", "npy")),
    ("qtis-lstm", "qtis-lstm", "1", ("json", "npy")),
    ("qtis-lstm seed size", "qtis-lstm", "2", ("npy",)),
)
MODEL_CALL_WINDOWS = (1, 32)
LUA = Path(__file__).with_name("serving.lua")
BODIES = {"json": "application/json", "npy": "application/x-npy"}


def prepare(console: Console, home: Path) -> str:
    from mlflow.tracking import MlflowClient  # noqa: F401  (configures its logging first)

    from training.runner import TrainConfig, run_training
    from training.settings import TrackingSettings
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse.db import recreate_database, sqlalchemy_url
    from warehouse.ingest import ingest
    from warehouse.providers.bundled import BundledProvider
    from warehouse.schema import migrate

    url = recreate_database("bench_serving", get_settings())
    os.environ["QTIS_MLFLOW_TRACKING_URI"] = sqlalchemy_url(
        recreate_database("bench_serving_mlflow", get_settings())
    )
    os.environ["QTIS_DATABASE_URL"] = url
    os.environ["QTIS_HOME"] = str(home)
    migrate(url)
    with console.status("loading the bundled sample and building features"):
        ingest(BundledProvider(), url, get_settings())
        update_garch(url)
        assert build(url, full_refresh=True, tests=False).success
    with console.status("training an XGBoost and an LSTM champion (small)"):
        config = TrainConfig(
            models=("xgboost", "lstm"), size="small", epochs=1, splits=2, xgb_estimators=200,
            explain_samples=0,
        )  # fmt: skip
        run_training(url, config, tracking=TrackingSettings())
    with console.status("training the LSTM at its default (seed) size: version 2"):
        config = TrainConfig(models=("lstm",), size="seed", epochs=1, splits=2, explain_samples=0)
        run_training(url, config, tracking=TrackingSettings())
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, batching: bool, home: Path, workers: int = 1) -> subprocess.Popen:
    from serving.launch import service_command, service_env

    env = service_env() | {
        "QTIS_SERVE_BATCHING": str(batching).lower(),
        "QTIS_SERVE_WORKERS": str(workers),
        "QTIS_SERVE_RELOAD_SECONDS": "0",
        "QTIS_API_RATE_LIMIT": "1000000",
        "QTIS_API_RATE_BURST": "1000000",
        # its own: BentoML empties BENTOML_HOME/prometheus_multiproc_dir when a service
        # starts, which would wipe the metrics of the other service measured beside it
        "BENTOML_HOME": str(home),
    }
    process = subprocess.Popen(
        service_command("127.0.0.1", port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the service did not start")


def wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench.serving needs the wrk load generator: apt-get install wrk")
    return found


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU of ``process`` and every process under it (the BentoML workers)."""
    root = psutil.Process(process.pid)
    total = 0.0
    for p in (root, *root.children(recursive=True)):
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def load(port: int, body: Path, media: str, concurrency: int, seconds: int, service) -> dict:
    """One wrk run; the CPU shares are of all the machine's cores over the run."""
    env = dict(os.environ, QTIS_BENCH_BODY=str(body), QTIS_BENCH_TYPE=media)
    command = [wrk(), "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s",
               str(LUA), f"http://127.0.0.1:{port}/predict"]  # fmt: skip
    # wrk is the only child reaped during the run: RUSAGE_CHILDREN's growth is its CPU
    children, served = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(service)
    machine = psutil.cpu_times()
    started = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after, cores = resource.getrusage(resource.RUSAGE_CHILDREN), psutil.cpu_count()
    busy = psutil.cpu_times()
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    statuses = {int(k): int(v) for k, v in figures["status"].items()}

    def share(cpu: float) -> float:
        return cpu / (wall * cores)

    return {
        "concurrency": concurrency,
        "requests": figures["requests"],
        "throughput_rps": figures["requests"] / figures["seconds"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300),
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "socket_errors": figures["socket_errors"],
        "service_cpu_share": share(service_cpu := cpu_seconds(service) - served),
        "service_cpu_ms_per_request": service_cpu / max(1, figures["requests"]) * 1e3,
        "load_cpu_share": share(
            after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        ),
        "machine_cpu_share": share(busy.user + busy.system - machine.user - machine.system),
    }


def batch_counts(port: int) -> tuple[float, float]:
    """Windows scored and model calls so far (the service's qtis_batch_windows histogram)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    value = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("qtis_batch_windows_sum", "qtis_batch_windows_count"))
    }
    return value.get("qtis_batch_windows_sum", 0.0), value.get("qtis_batch_windows_count", 0.0)


def bodies(window: np.ndarray, folder: Path) -> dict[str, Path]:
    """The one window as a JSON and as an .npy request body, in files wrk reads."""
    (json_body := folder / "body.json").write_text(
        json.dumps({"request": {"windows": window.tolist()}})
    )
    np.save(npy_body := folder / "body.npy", window.astype(np.float32))
    return {"json": json_body, "npy": npy_body}


def model_call_ms(model, window: np.ndarray, repeats: int = 100) -> dict[str, float]:
    """The model call alone, in this process on one thread as the service runs it (milliseconds
    per call of 1 and of 32 windows): what batching can save at most."""
    from registry.loaded import limit_threads

    torch.set_num_threads(1)
    limit_threads(model.impl.bundle, 1)
    out = {}
    for n in MODEL_CALL_WINDOWS:
        windows = np.repeat(window.astype(np.float32), n, axis=0)
        for _ in range(10):
            model.predict(windows)
        started = time.perf_counter()
        for _ in range(repeats):
            model.predict(windows)
        out[str(n)] = (time.perf_counter() - started) / repeats * 1e3
    return out


def measure(
    url: str, champion: tuple[str, str, str, tuple[str, ...]], seconds: int, workers: int,
    console: Console, scratch: Path,
) -> tuple[list[dict], dict[str, float]]:  # fmt: skip
    """Rows of ``champion`` (label, name, version, bodies), and its model call's cost;
    ``scratch``: the run's folder for the request bodies and the services' BENTOML_HOMEs."""
    from registry.aliases import force
    from registry.model_registry import ModelRegistry
    from serving.probe import serving_probe
    from serving.windows import WindowSource
    from training.promotion import PromotionSettings
    from training.settings import TrackingSettings

    label, name, version, sent = champion
    tracking = TrackingSettings()
    probe = serving_probe(url, samples=20, tracking=tracking)
    force(url, name, version, "serving benchmark", probe, PromotionSettings(), actor="bench",
          tracking=tracking)  # fmt: skip
    model = ModelRegistry(url, tracking).load("champion", name, version)
    window = WindowSource(url, model.features).sample(model.window, n=1)
    with console.status(f"{label}: the model call alone"):
        cost = model_call_ms(model, window)
    folder = scratch / label.replace(" ", "-")
    folder.mkdir(parents=True)
    files = bodies(window, folder)
    # both services up at once and measured in turns (off, on, off, on, ...): a drift of the
    # machine (the prediction log growing, autovacuum, other work) then hits both alike
    services = {
        b: (start(port := free_port(), b, folder / f"bentoml-{b}", workers), port)
        for b in (False, True)
    }
    samples: dict[tuple[str, bool, int], list[dict]] = {}
    try:
        for process, port in services.values():  # warm up
            for body in sent:
                load(port, files[body], BODIES[body], 4, 1, process)
        for body in sent:
            for concurrency in CONCURRENCY:
                for turn in range(ROUNDS):
                    for batching, (process, port) in services.items():
                        title = f"{label} {body} batching={'on' if batching else 'off'} "
                        with console.status(f"{title}c={concurrency} (round {turn + 1})"):
                            before = batch_counts(port)
                            row = load(port, files[body], BODIES[body], concurrency, seconds,
                                       process)  # fmt: skip
                            after = batch_counts(port)
                        calls = max(1.0, after[1] - before[1])
                        row["windows_per_model_call"] = (after[0] - before[0]) / calls
                        samples.setdefault((body, batching, concurrency), []).append(row)
    finally:
        for process, _ in services.values():
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder)
    return [summary(label, key, runs) for key, runs in sorted(samples.items())], cost


def summary(name: str, key: tuple[str, bool, int], runs: list[dict]) -> dict:
    """One table row: medians over the rounds (sums for counts), the rounds kept."""
    body, batching, concurrency = key
    medians = ("throughput_rps", "p50_ms", "p99_ms", "windows_per_model_call",
               "service_cpu_share", "service_cpu_ms_per_request", "load_cpu_share",
               "machine_cpu_share")  # fmt: skip
    return {
        "champion": name,
        "body": body,
        "batching": batching,
        "concurrency": concurrency,
        "requests": sum(r["requests"] for r in runs),
        **{key: float(np.median([r[key] for r in runs])) for key in medians},
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "server_errors": sum(r["server_errors"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "rounds": runs,
    }


def report(
    rows: list[dict], costs: dict[str, dict[str, float]], seconds: int, workers: int,
    console: Console,
) -> dict:  # fmt: skip
    table = Table(
        "champion", "body", "batching", "c", "requests", "req/s", "p50 ms", "p99 ms",
        "non-2xx", "windows/call", "service CPU", "ms CPU/req", "wrk CPU", "machine CPU",
        title=f"POST /predict, one window per request, wrk on loopback, {workers} worker(s); "
        f"median of {ROUNDS} rounds of {seconds} s, batching on and off measured in turns; "
        "CPU as shares of all cores",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            r["champion"], r["body"], "on" if r["batching"] else "off", str(r["concurrency"]),
            f"{r['requests']:,}", f"{r['throughput_rps']:.0f}", f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}", str(r["non_2xx"]), f"{r['windows_per_model_call']:.1f}",
            f"{r['service_cpu_share']:.0%}", f"{r['service_cpu_ms_per_request']:.2f}",
            f"{r['load_cpu_share']:.0%}",
            f"{r['machine_cpu_share']:.0%}",
        )  # fmt: skip
    console.print(table)
    ratios: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r["champion"] for r in rows):
        for body in BODIES:
            by = {
                (r["batching"], r["concurrency"]): r
                for r in rows
                if r["champion"] == name and r["body"] == body
            }
            if not by:
                continue
            ratio = by[(True, 32)]["throughput_rps"] / by[(False, 32)]["throughput_rps"]
            ratios.setdefault(name, {})[body] = ratio
            console.print(
                f"{name} {body}: batching on/off throughput at c=32: {ratio:.2f}x; p99 at c=1: "
                f"{by[(False, 1)]['p99_ms']:.2f} ms (off), {by[(True, 1)]['p99_ms']:.2f} ms (on)"
            )
    for name, cost in costs.items():
        console.print(
            f"{name}: the model call alone takes {cost['1']:.3f} ms for 1 window, "
            f"{cost['32']:.3f} ms for 32: batching could at most multiply throughput by "
            f"{ceiling(cost):.1f} if the service cost nothing else"
        )
    return ratios


def ceiling(cost: dict[str, float]) -> float:
    """Throughput with 32 windows per model call over 1 per call, counting the model alone."""
    return 32 * cost["1"] / cost["32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="per measurement and round")
    parser.add_argument("--workers", type=int, default=1, help="QTIS_SERVE_WORKERS")
    args = parser.parse_args()
    wrk()  # before minutes of preparation
    console = Console(width=max(170, Console().width))  # the table's 14 columns
    with tempfile.TemporaryDirectory() as tmp:
        url = prepare(console, Path(tmp) / ".qtis")
        rows, costs = [], {}
        for champion in CHAMPIONS:
            measured, costs[champion[0]] = measure(url, champion, args.seconds, args.workers,
                                                   console, Path(tmp))  # fmt: skip
            rows += measured
    ratios = report(rows, costs, args.seconds, args.workers, console)
    figures = {
        "seconds_per_point": args.seconds,
        "workers": args.workers,
        "load_generator": "wrk 1 thread",
        "rows": rows,
        "batching_throughput_ratio_c32": ratios,
        # milliseconds per model call of 1 and of 32 windows, in process on one thread, and
        # the throughput ratio batching would reach if the service cost nothing else
        "model_call_ms": costs,
        "batching_ceiling_c32": {name: ceiling(cost) for name, cost in costs.items()},
    }
    # the figures of record are one worker's; other worker counts go beside them
    write(
        "serving",
        figures,
        console,
        file=None if args.workers == 1 else f"serving_workers{args.workers}.json",
    )


if __name__ == "__main__":
    main()
