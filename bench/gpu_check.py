"""The GPU check, for a session lent a GPU: the seed-size LSTM and Transformer trained for a few
hundred steps in bf16 mixed precision through the path `qtis train` uses (SequenceModel on
Lightning, accelerator and devices "auto"), then the in-process single-window inference
benchmark on the trained networks (torch on the CPU, ONNX Runtime as served, torch on the GPU),
each printed next to the CPU figures of bench/results/training.json.

    python -m bench.gpu_check               # on a GPU: writes bench/results/gpu_check.json
    python -m bench.gpu_check --cpu-smoke   # anywhere: a few tiny steps on the CPU, no file

No database is needed: the windows are synthetic, with the feature spec's columns and horizons.
The machine needs the project's Python dependencies, with a CUDA build of torch.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench._results import RESULTS, write
from bench._timing import call_latency
from training.data import TrainingData
from training.models.sequence import SequenceBundle, SequenceModel
from training.windows import window_ends
from transforms.spec import default_spec

KINDS = ("lstm", "transformer")
# the names bench/training.py files its CPU figures under


@dataclass(frozen=True)
class Plan:
    """How much to run: the full check on a GPU, or the smoke run that only proves the script."""

    steps: int
    warmup_steps: int
    batch_size: int
    symbols: int
    bars: int
    calls: int
    warmup_calls: int
    gpu_batch: int
    accelerator: str


FULL = Plan(steps=300, warmup_steps=20, batch_size=256, symbols=20, bars=2520, calls=2000,
            warmup_calls=50, gpu_batch=1024, accelerator="auto")  # fmt: skip
SMOKE = Plan(steps=3, warmup_steps=1, batch_size=8, symbols=2, bars=120, calls=5,
             warmup_calls=2, gpu_batch=8, accelerator="cpu")  # fmt: skip


class StepClock(L.Callback):
    """Training samples per second after the warm-up steps (allocator, kernel choice, workers),
    timed to the device's end of work."""

    def __init__(self, warmup: int, batch_size: int) -> None:
        self.warmup, self.batch_size = warmup, batch_size
        self.steps, self.start, self.seconds = 0, 0.0, 0.0

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.global_step == self.warmup:
            self._sync()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.global_step > self.warmup:
            self.steps += 1

    def on_train_end(self, *_: Any) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.start

    def samples_per_s(self) -> float:
        return self.steps * self.batch_size / self.seconds


def synthetic(symbols: int, bars: int, seed: int = 0) -> TrainingData:
    """Windows shaped like the feature store's: the spec's columns, its horizons, a weak signal."""
    spec = default_spec()
    names, horizons = tuple(spec.columns()), tuple(spec.horizons)
    rng = np.random.default_rng(seed)
    n = symbols * bars
    features = rng.normal(size=(n, len(names))).astype(np.float32)
    noise = rng.normal(0, 0.01, (n, len(horizons)))
    returns = (0.002 * features[:, :1] + noise).astype(np.float32)
    day = np.arange(bars).astype("datetime64[D]").astype("datetime64[us]")
    return TrainingData(
        symbols=np.repeat([f"S{i:03d}" for i in range(symbols)], bars),
        ts=np.tile(day, symbols), features=features, returns=returns,
        volatility=np.abs(returns), feature_names=names, horizons=horizons,
    )  # fmt: skip


def train(kind: str, data: TrainingData, plan: Plan, precision: str) -> tuple[SequenceModel, dict]:
    """``plan.steps`` optimizer steps of the seed-size network (no validation, no early stop)."""
    clock = StepClock(plan.warmup_steps, plan.batch_size)
    window = 60
    model = SequenceModel(
        kind, window=window, max_epochs=10_000, max_steps=plan.steps, batch_size=plan.batch_size,
        accelerator=plan.accelerator, devices=1, precision=precision, callbacks=[clock],
    )  # fmt: skip
    model.fit(data, window_ends(data, window), np.array([], dtype=np.int64))
    figures = {
        "samples_per_s": clock.samples_per_s(),
        "steps": plan.steps,
        "batch_size": plan.batch_size,
        "precision": precision,
        "device": torch.cuda.get_device_name(0) if model.module.device.type == "cuda" else "cpu",
    }
    return model, figures


def inference(bundle: SequenceBundle, plan: Plan) -> dict[str, dict[str, float]]:
    """Single-window latency in process: torch on one CPU thread, ONNX Runtime (the served
    path), and torch on the GPU when there is one (fp32 single window; bf16 batches)."""
    window = np.random.default_rng(1).normal(size=(1, bundle.window, bundle.n_features))
    window = window.astype(np.float32)
    repeats = plan.calls if bundle.kind == "lstm" else max(1, plan.calls // 10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one request at a time: more threads only add hand-off latency
    try:
        served = replace(bundle).compile()  # what training registers and serving loads
        out = {
            path: call_latency(predict, window, repeats, plan.warmup_calls)
            for path, predict in (
                ("torch eager, CPU", bundle.predict_windows),
                ("ONNX Runtime, CPU (served)", served.predict_windows),
            )
        }
    finally:
        torch.set_num_threads(threads)
    if torch.cuda.is_available():
        out |= gpu_inference(bundle, window, plan, repeats)
    return out


@torch.inference_mode()
def gpu_inference(bundle: SequenceBundle, window: np.ndarray, plan: Plan, repeats: int) -> dict:
    """The trained network on the GPU (a copy: the bundle's own stays on the CPU): one window in
    fp32, as a request would run, and bf16 batches, the throughput a batch scorer would get."""
    net = replace(bundle).net().to("cuda")
    one = torch.from_numpy(bundle.scaler.transform(window)).to("cuda")
    sync = torch.cuda.synchronize
    figures = {"torch, GPU fp32": call_latency(net, one, repeats, plan.warmup_calls, sync)}
    batch = one.repeat(plan.gpu_batch, 1, 1)

    def bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return net(x)

    timed = call_latency(bf16, batch, max(10, repeats // 10), plan.warmup_calls, sync)
    timed["samples_per_s"] = plan.gpu_batch / (timed["p50_ms"] / 1e3)
    figures[f"torch, GPU bf16, batches of {plan.gpu_batch}"] = timed
    return figures


def cpu_reference() -> dict[str, Any]:
    path = RESULTS / "training.json"
    return json.loads(path.read_text()) if path.exists() else {}


def report(console: Console, results: dict[str, Any], reference: dict[str, Any]) -> None:
    ref_train = reference.get("training_windows_per_s", {})  # by family
    t = Table("network", "device", "precision", "samples/s", "CPU samples/s (training.json)",
              title="training throughput, seed sizes")  # fmt: skip
    for kind in KINDS:
        fig = results["training"][kind]
        cpu = ref_train.get(kind)
        t.add_row(kind, fig["device"], fig["precision"], f"{fig['samples_per_s']:,.0f}",
                  f"{cpu:,.0f}" if cpu else "-")  # fmt: skip
    console.print(t)
    ref_latency = reference.get("inference_latency", {})
    t = Table("network", "path", "p50 ms", "p99 ms", "samples/s", "CPU p99 ms (training.json)",
              title="single-window inference, in process")  # fmt: skip
    for kind in KINDS:
        for path, fig in results["inference"][kind].items():
            cpu_key = kind if "ONNX" in path else f"{kind}, torch eager"  # served: the family
            cpu = ref_latency.get(cpu_key, {}).get("p99_ms")
            rate = fig.get("samples_per_s", 1e3 / fig["p50_ms"])
            t.add_row(kind, path, f"{fig['p50_ms']:.3f}", f"{fig['p99_ms']:.3f}", f"{rate:,.0f}",
                      f"{cpu:.3f}" if cpu else "-")  # fmt: skip
    console.print(t)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny steps on the CPU")
    parser.add_argument("--steps", type=int, help="training steps per network (default 300)")
    parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision")
    parser.add_argument("--json-out", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    console = Console()
    plan = SMOKE if args.cpu_smoke else FULL
    if args.steps:
        plan = replace(plan, steps=args.steps)
    if plan.steps <= plan.warmup_steps:
        parser.error(f"--steps must exceed the {plan.warmup_steps} warm-up steps")
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --cpu-smoke to check the script on a CPU")
    data = synthetic(plan.symbols, plan.bars)
    results: dict[str, Any] = {"plan": vars(plan) | {"cpu_smoke": args.cpu_smoke},
                               "training": {}, "inference": {}}  # fmt: skip
    for kind in KINDS:
        with console.status(f"{kind}: {plan.steps} steps, {args.precision}"):
            model, results["training"][kind] = train(kind, data, plan, args.precision)
        with console.status(f"{kind}: single-window inference"):
            results["inference"][kind] = inference(model.bundle(), plan)
    report(console, results, cpu_reference())
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    if not args.cpu_smoke:
        write("gpu_check", results, console)
    return results


if __name__ == "__main__":
    main()
