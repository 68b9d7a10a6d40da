"""The qtis command line, run as a real subprocess like a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def qtis(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``qtis ARGS`` with ``env`` over this process's environment; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=300,
    )
