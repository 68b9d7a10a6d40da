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
def test_cpu_smoke_runs_every_part_and_writes_no_result(tmp_path):
    result_file = RESULTS / "gpu_check.json"
    before = result_file.stat().st_mtime_ns if result_file.exists() else None
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--cpu-smoke", "--json-out", str(out)],
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
        assert trained["precision"] == "bf16-mixed" and trained["device"] == "cpu"
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
