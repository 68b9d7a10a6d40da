"""The one place a benchmark's figures are written: a JSON document in ``bench/results/`` stamped
with when, on what machine and by which command it was measured, so runs can be compared."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def command(benchmark: str) -> str:
    """The command line that produced the figures, as it is run: ``python -m bench.NAME ARGS``."""
    return " ".join([Path(sys.executable).name, "-m", f"bench.{benchmark}", *sys.argv[1:]])


def write(
    benchmark: str,
    figures: dict[str, Any],
    console: Console,
    *,
    file: str | None = None,
    merge: bool = False,
) -> Path:
    """Write ``figures`` to ``bench/results/{file or benchmark.json}`` and say where.

    ``merge`` keeps what an earlier run wrote there under keys this run did not measure (a run
    that skips a part leaves that part's last figures in place)."""
    path = RESULTS / (file or f"{benchmark}.json")
    previous = json.loads(path.read_text()) if merge and path.exists() else {}
    payload = {
        **previous,
        "benchmark": benchmark,
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        **figures,
        "command": command(benchmark),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
    took = f" in {figures['total_s']:.0f} s" if "total_s" in figures else ""
    console.print(f"wrote {path}{took}")
    return path
