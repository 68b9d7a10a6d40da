"""Serving latency and throughput: the real BentoML service on loopback, single-window
``POST /predict`` requests from an async client at concurrency 1, 8 and 32, for an XGBoost and an
LSTM champion, with adaptive batching on and off (the baseline, measured in the same run).

    python -m bench.serving [--seconds 4]

Uses scratch databases (bench_serving, bench_serving_mlflow) on the QTIS server with the bundled
sample. The load generator shares the machine's cores with the service: on 2 cores its own CPU
time caps throughput, so the numbers are a floor of what a separate client would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings

CONCURRENCY = (1, 8, 32)
ROUNDS = 3


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
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, batching: bool) -> subprocess.Popen:
    from serving.launch import service_command, service_env

    env = service_env() | {
        "QTIS_SERVE_BATCHING": str(batching).lower(),
        "QTIS_SERVE_RELOAD_SECONDS": "0",
        "QTIS_API_RATE_LIMIT": "1000000",
        "QTIS_API_RATE_BURST": "1000000",
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


async def load(base: str, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def user() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                response = await client.post("/predict", content=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1e3)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    values = np.array(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(values),
        "throughput_rps": len(values) / elapsed,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
    }


def batch_sizes(base: str) -> float:
    """Mean windows per model call over the service's life (its qtis_batch_windows histogram)."""
    text = httpx.get(base + "/metrics").text
    value = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("qtis_batch_windows_sum", "qtis_batch_windows_count"))
    }
    return value["qtis_batch_windows_sum"] / max(1.0, value["qtis_batch_windows_count"])


def measure(url: str, name: str, seconds: float, console: Console) -> list[dict]:
    from registry.aliases import force
    from registry.model_registry import ModelRegistry
    from serving.probe import serving_probe
    from serving.windows import WindowSource
    from training.promotion import PromotionSettings
    from training.settings import TrackingSettings

    tracking = TrackingSettings()
    probe = serving_probe(url, samples=20, tracking=tracking)
    force(url, name, "1", "serving benchmark", probe, PromotionSettings(), actor="bench",
          tracking=tracking)  # fmt: skip
    model = ModelRegistry(url, tracking).load("champion", name, "1")
    window = WindowSource(url, model.features).sample(model.window, n=1)
    body = json.dumps({"request": {"windows": window.tolist()}}).encode()
    # both services up at once and measured in turns (off, on, off, on, ...): a drift of the
    # machine (the prediction log growing, autovacuum, other work) then hits both alike
    processes = {batching: (start(port := free_port(), batching), port) for batching in (0, 1)}
    samples: dict[tuple[bool, int], list[dict]] = {}
    try:
        for _, port in processes.values():
            asyncio.run(load(f"http://127.0.0.1:{port}", body, 4, 2.0))  # warm up
        for concurrency in CONCURRENCY:
            for turn in range(ROUNDS):
                for batching, (_, port) in processes.items():
                    label = f"{name} batching={'on' if batching else 'off'} c={concurrency}"
                    with console.status(f"{label} (round {turn + 1} of {ROUNDS})"):
                        row = asyncio.run(
                            load(f"http://127.0.0.1:{port}", body, concurrency, seconds)
                        )
                    samples.setdefault((bool(batching), concurrency), []).append(row)
        calls = batch_sizes(f"http://127.0.0.1:{processes[1][1]}")
    finally:
        for process, _ in processes.values():
            process.terminate()
            process.wait(timeout=30)
    rows = []
    for (batching, concurrency), runs in samples.items():
        rows.append(
            {
                "champion": name,
                "batching": batching,
                "concurrency": concurrency,
                "requests": sum(r["requests"] for r in runs),
                # medians over the rounds
                **{
                    key: float(np.median([r[key] for r in runs]))
                    for key in ("throughput_rps", "p50_ms", "p99_ms")
                },
                "server_errors": sum(r["server_errors"] for r in runs),
                "rounds": runs,
                "windows_per_model_call": calls if batching else 1.0,
            }
        )
    return sorted(rows, key=lambda r: (r["batching"], r["concurrency"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement and round")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        url = prepare(console, Path(tmp) / ".qtis")
        rows = []
        for name in ("qtis-xgboost", "qtis-lstm"):
            rows += measure(url, name, args.seconds, console)
    table = Table(
        "champion", "batching", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "5xx",
        title=f"POST /predict, one window per request, loopback; median of {ROUNDS} rounds of "
        f"{args.seconds:g} s, batching on and off measured in turns",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            r["champion"], "on" if r["batching"] else "off", str(r["concurrency"]),
            f"{r['requests']:,}", f"{r['throughput_rps']:.0f}", f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}", str(r["server_errors"]),
        )  # fmt: skip
    console.print(table)
    ratios = {}
    for name in ("qtis-xgboost", "qtis-lstm"):
        by = {(r["batching"], r["concurrency"]): r for r in rows if r["champion"] == name}
        ratios[name] = by[(True, 32)]["throughput_rps"] / by[(False, 32)]["throughput_rps"]
        console.print(
            f"{name}: batching on/off throughput at c=32: {ratios[name]:.2f}x; p99 at c=1: "
            f"{by[(False, 1)]['p99_ms']:.2f} ms (off), {by[(True, 1)]['p99_ms']:.2f} ms (on); "
            f"batching merged {by[(True, 32)]['windows_per_model_call']:.2f} windows per model "
            "call on average"
        )
    figures = {
        "seconds_per_point": args.seconds,
        "rows": rows,
        "batching_throughput_ratio_c32": ratios,
    }
    write("serving", figures, console)


if __name__ == "__main__":
    main()
