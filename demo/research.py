"""The demo's research step on a larger universe: skfolio's 20 S&P 500 large caps (adjusted
closes only, a wide panel) over the last years of the set, every model family and the baselines
by purged walk-forward, scored as ``bench/models.py`` scores them (``training.benchmark``: IC,
rank IC, ICIR, hit rate, a long-only top-k portfolio after costs, all with intervals).

Small on purpose (tiny networks, one epoch, two folds, no GARCH fits: ``garch_vol`` stays null)
so that ``make demo`` stays short; ``python -m bench.models`` runs the same at larger sizes. It
runs in a scratch database of its own (``qtis_demo_research``, dropped and made again), so the
demo's universe, models and trading are untouched.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from demo.panels import write_panel
from training.benchmark import BenchmarkConfig, benchmark_models, table
from training.families import FAMILIES
from training.runner import TrainConfig
from transforms.dbt_runner import build
from warehouse.db import recreate_database
from warehouse.ingest import ingest
from warehouse.providers import FileProvider
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

DATABASE = "qtis_demo_research"
SPAN = ("2019-01-01", "2022-12-31")  # the set ends in 2022
DEMO_RESEARCH = TrainConfig(
    models=FAMILIES, size="tiny", epochs=1, splits=2, window=30, min_history=120,
    xgb_estimators=100, explain_samples=0,
)  # fmt: skip
SCORING = BenchmarkConfig(horizon=1, top_k=5)


def show_research(console: Console, settings: WarehouseSettings) -> str:
    """Run the benchmark on the panel, print its table; returns the summary's line (the best
    family against the baselines), also written to reports/research.json."""
    try:
        url = recreate_database(DATABASE, settings)
    except psycopg.Error as exc:  # e.g. no CREATEDB right on a managed server
        console.print(f"[yellow]research step skipped[/]: no scratch database {DATABASE} ({exc})")
        return "skipped (no scratch database)"
    migrate(url)
    with console.status("research: ingesting 20 S&P 500 large caps (close-only wide panel)"):
        with tempfile.TemporaryDirectory() as folder:
            loaded = ingest(FileProvider(write_panel(Path(folder), SPAN, None), "csv"), url,
                            settings)  # fmt: skip
        if not build(url, full_refresh=True, tests=False).success:
            raise SystemExit(f"the research step's feature build failed in database {DATABASE}")
    with console.status(f"research: {len(FAMILIES)} families and the baselines, walk-forward"):
        result = benchmark_models(url, DEMO_RESEARCH, SCORING)
    headers, rows = table(result)
    shown = Table(*headers, title=f"Research: every family on 20 S&P 500 large caps, "
                  f"{SPAN[0][:4]}-{SPAN[1][:4]} (database {DATABASE}; out of sample, after costs; "
                  "95% intervals)")  # fmt: skip
    for row in rows:
        shown.add_row(*row)
    console.print(shown)
    line = best_line(result, loaded.loaded)
    console.print(f"[bold]Research[/]: {line}. Larger runs: python -m bench.models "
                  "(docs/model_benchmarks.md)")  # fmt: skip
    path = settings.home / "reports" / "research.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result | {"summary": line}, indent=1, default=str))
    return line


def best_line(result: dict[str, Any], closes: int) -> str:
    """The best family by information ratio against the equal-weight universe, next to the best
    baseline, and whether any family's interval clears zero."""

    def ir(row: dict[str, Any]) -> float:
        value = (row["information_ratio"] or {}).get("value")
        return value if value is not None and math.isfinite(value) else -math.inf

    families = [r for r in result["models"] if not r["baseline"]]
    baselines = [r for r in result["models"] if r["baseline"]]
    best, base = max(families, key=ir), max(baselines, key=ir)
    cleared = result["verdict"]["ir_above_zero"]
    rank_ic = (best["rank_ic"] or {}).get("value")
    return (
        f"{closes:,} closes; best family {best['model']} (IR {ir(best):.2f}, rank IC "
        f"{math.nan if rank_ic is None else rank_ic:.4f}) vs best baseline {base['model']} "
        f"(IR {ir(base):.2f}); "
        + (f"IR interval above 0: {', '.join(cleared)}" if cleared else
           "no family's IR interval is above 0")
    )  # fmt: skip
