"""The qtis command line, run as a real subprocess like a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

TIMEOUT_S = 300


def qtis(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``qtis ARGS`` with ``env`` over this process's environment; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=TIMEOUT_S,
    )


def start_qtis(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start ``qtis ARGS`` (a server) with ``env`` over this process's environment; see
    :func:`start_group`."""
    return start_group([sys.executable, "-m", "cli.app", *args], log, os.environ | env)


def start_group(
    command: list[str], log: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start ``command`` in its own session so that :func:`stop_group` stops the children it
    starts too (a server's workers); output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_group(process: subprocess.Popen) -> None:
    """Stop the process and every child it started (its own session's process group)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def qtis_together(
    *runs: tuple[Sequence[str], Mapping[str, str]], timeout: float = TIMEOUT_S
) -> list[subprocess.CompletedProcess]:
    """Start every ``(args, env)`` as its own ``qtis`` process at once (as on separate machines)
    and wait for all, ``timeout`` seconds in all; output captured as text (through files: a full
    pipe would stall a process that the others wait for), in the order given."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        logs = [
            [stack.enter_context(open(f"{tmp}/{i}.{kind}", "w+")) for kind in ("out", "err")]
            for i in range(len(runs))
        ]
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "cli.app", *args],
                stdout=out,
                stderr=err,
                text=True,
                env=os.environ | dict(env),
            )
            for (args, env), (out, err) in zip(runs, logs, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            for process in started:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for files in logs:
            for f in files:
                f.seek(0)
        return [
            subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())
            for p, (out, err) in zip(started, logs, strict=True)
        ]
