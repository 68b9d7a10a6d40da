"""bench/gpu_check.py is prepared for a session with a GPU; here its CPU smoke mode proves that
the script runs end to end (training in bf16 mixed precision, the inference paths, the report)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bench import gpu_check
from bench._results import RESULTS


@pytest.mark.slow  # trains the seed-size networks for a few steps
def cpu_runs_bf16_lstm() -> bool:
    """Whether this CPU's oneDNN has a bf16 LSTM kernel (an AMD EPYC without AVX-512 has none:
    'could not create a primitive descriptor for the LSTM forward propagation primitive')."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4, batch_first=True)(torch.randn(2, 3, 4))
    except RuntimeError:
        return False
    return True


def test_cpu_smoke_runs_every_part_and_writes_no_result(tmp_path):
    # the mixed-precision path where the CPU can run it, else the rest of the plumbing in fp32
    precision = "bf16-mixed" if cpu_runs_bf16_lstm() else "32"
    result_file = RESULTS / "gpu_check.json"
    before = result_file.stat().st_mtime_ns if result_file.exists() else None
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--cpu-smoke", "--json-out", str(out),
         "--precision", precision],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training throughput" in done.stdout and "single-window inference" in done.stdout
    cpu = json.loads((RESULTS / "training.json").read_text())  # the CPU figures shown alongside
    assert f"{cpu['training_windows_per_s']['lstm']:,.0f}" in done.stdout
    assert f"{cpu['inference_latency']['lstm']['p99_ms']:.3f}" in done.stdout
    figures = json.loads(out.read_text())
    for kind in ("lstm", "transformer"):
        trained = figures["training"][kind]
        assert trained["precision"] == precision and trained["device"] == "cpu"
        assert trained["samples_per_s"] > 0 and trained["steps"] == gpu_check.SMOKE.steps
        paths = figures["inference"][kind]
        assert {"torch eager, CPU", "ONNX Runtime, CPU (served)"} <= set(paths)
        assert all(0 < p["p50_ms"] <= p["p99_ms"] for p in paths.values())
    after = result_file.stat().st_mtime_ns if result_file.exists() else None
    assert after == before  # a smoke run never stands in for the GPU figures


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_without_a_gpu_the_full_check_refuses_and_names_the_smoke_mode():
    with pytest.raises(SystemExit, match="--cpu-smoke"):
        gpu_check.main([])
