"""bench.scale's own arithmetic and measuring: the growth of a stage against the data's, the
pairing of two sizes, and a peak of memory held by a stage's child process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.scale import PeakSampler, compare, growth


def run(symbols: int, seconds: float, cpu: float, db: float | None) -> dict:
    stage = {"seconds": seconds, "cpu_s": cpu, "db_cpu_s": db, "peak_mb": 100.0}
    return {"symbols": symbols, "years": 5.0, "rows": symbols * 1261, "stages": {"ingest": stage}}


def test_growth_is_the_cost_ratio_over_the_data_ratio():
    small, large = run(500, 10.0, 4.0, 1.0), run(2000, 40.0, 20.0, 5.0)
    assert growth(small, large)["ingest"] == pytest.approx(1.0)  # wall: in proportion
    assert growth(small, large, "cpu_s")["ingest"] == pytest.approx((25 / 5) / 4)  # db counted
    assert growth(run(500, 10, 4, None), run(2000, 10, 4, None))["ingest"] == pytest.approx(0.25)


def test_a_run_is_compared_with_the_size_a_quarter_of_it_in_the_same_years():
    runs = {"500": run(500, 10, 4, 1), "100": run(100, 3, 1, 1), "2000": run(2000, 80, 40, 10)}
    other, ratios = compare(runs, runs["2000"])
    assert other["symbols"] == 500
    assert ratios["seconds"]["ingest"] == pytest.approx(2.0)
    other, ratios = compare(runs, runs["500"])
    assert other["symbols"] == 2000 and ratios["seconds"]["ingest"] == pytest.approx(2.0)
    alone = {"20": run(20, 1, 1, 1) | {"years": 3.0}}
    assert compare(runs | alone, alone["20"]) == (None, {})


def test_the_peak_counts_memory_held_by_a_grandchild():
    """A stage whose child holds 300 MB for a second: the sampled peak of the tree sees it."""
    hold = "import time; b = b'x' * (300 * 2**20); time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hold!r}])"
    child = subprocess.Popen([sys.executable, "-c", parent])
    sampler = PeakSampler(child.pid, interval=0.05)
    child.wait()
    assert sampler.stop() >= 300 * 2**20
