"""The qtis command line, run as a real subprocess like a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def qtis(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``qtis ARGS`` with ``env`` over this process's environment; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=300,
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
