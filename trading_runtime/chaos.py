"""Crash testing: run a paper stream in a subprocess, ``kill -9`` it at random points, restart
it, and measure how long each restart takes to trade again. The caller compares the rebuilt
state with an uninterrupted run (tests/trading_runtime/test_recovery.py, bench/recovery.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.db import connect


@dataclass
class Crashes:
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)  # restart -> first new event
    killed_at: list[int] = field(default_factory=list)  # journal events at each kill


def qtis() -> str:
    return str(Path(sys.executable).with_name("qtis"))


def events(url: str, stream: str) -> int:
    with connect(url, autocommit=True) as conn:
        return conn.execute(
            "select count(*) from runtime.events where stream = %s", (stream,)
        ).fetchone()[0]


def crash_and_resume(
    url: str,
    stream: str,
    args: list[str],
    env: dict[str, str],
    kills: int,
    seed: int = 0,
    max_gap: int = 150,
    timeout: float = 300.0,
) -> Crashes:
    """``qtis trade paper --stream STREAM ARGS`` killed ``kills`` times, each after a random
    1..``max_gap`` new journal events, then run to its end."""
    rng = random.Random(seed)
    command = [qtis(), "trade", "paper", "--stream", stream, *args]
    out = Crashes()
    for _ in range(kills):
        before = events(url, stream)
        target = before + rng.randint(1, max_gap)
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)  # fmt: skip
        first = None
        while process.poll() is None and time.monotonic() - started < timeout:
            now = events(url, stream)
            if first is None and now > before:
                first = time.monotonic() - started
            if now >= target:
                break
            time.sleep(0.005 * rng.random())
        if process.poll() is not None:  # it finished (or failed) before the kill point
            _, stderr = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"paper run failed: {stderr.decode()[-2000:]}")
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        out.kills += 1
        out.killed_at.append(events(url, stream))
        if first is not None:
            out.restart_seconds.append(first)
    final = subprocess.run(command, env=env, capture_output=True, timeout=timeout)
    if final.returncode != 0:
        raise RuntimeError(f"paper run failed: {final.stderr.decode()[-2000:]}")
    return out
