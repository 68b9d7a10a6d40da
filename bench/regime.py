"""Drift detection on a market whose regime changes (monitoring/scenario.py), over seeds.

Per seed: a fresh database on an embedded Postgres of its own, the market built (ingest, GARCH,
the dbt features), an XGBoost champion trained on its first 700 bars, then the drift check
replayed as of every bar after training: 120 bars of the same regime (every alarm there is a
false one), then 20 bars after volatility triples and the autocorrelation the model learnt turns
negative. An alarm is what the drift sensor retrains on: data or prediction drift. The monitor
runs with its defaults (QTIS_DRIFT_*: thresholds calibrated on the training period); the
baseline, in the same replay, is one fixed threshold for every column (calibration off).

    python -m bench.regime [--seeds 20] [--first-seed 0]

The monitor's defaults were chosen on seeds 0-39; ``--first-seed 60`` measures it on seeds it
was not chosen on (written to ``results/regime_seeds60-79.json``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings


def one_seed(admin: str, seed: int, work: Path) -> dict[str, Any]:
    from monitoring.drift import drift_reports
    from monitoring.replay import replay
    from monitoring.scenario import RegimeChange
    from monitoring.settings import DriftSettings
    from serving.predictor import Predictor
    from serving.settings import ServingSettings
    from training.promotion import PromotionSettings
    from training.runner import TrainConfig
    from training.settings import TrackingSettings
    from warehouse import embedded
    from warehouse.db import sqlalchemy_url, with_database
    from warehouse.schema import migrate

    def fresh() -> str:
        name = f"regime_{uuid.uuid4().hex[:8]}"
        embedded.ensure_database(admin, name)
        return with_database(admin, name)

    url = fresh()
    migrate(url)
    os.environ.update(QTIS_DATABASE_URL=url, QTIS_HOME=str(work / f"seed{seed}"),
                      QTIS_MLFLOW_TRACKING_URI=sqlalchemy_url(fresh()))  # fmt: skip
    scenario = RegimeChange(seed=seed)
    started = time.perf_counter()
    scenario.build(url, get_settings())
    config = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=100, explain_samples=0)
    tracking = TrackingSettings()
    scenario.train_champion(url, config, PromotionSettings(), tracking)
    built = time.perf_counter()
    out: dict[str, Any] = {"seed": seed, "build_and_train_s": built - started}
    monitors = {"calibrated": DriftSettings(explain_samples=0),
                "fixed": DriftSettings(explain_samples=0, calibration_windows=0)}  # fmt: skip
    for name, settings in monitors.items():
        began = time.perf_counter()
        found = replay(
            url,
            scenario.last_trained,
            settings,
            drift_reports(get_settings().home),
            Predictor(url, ServingSettings(), tracking=tracking).champion,
            html=False,
            tracking=tracking,
        )
        late = [scenario.bars_after_change(r.current[1]) for r in found.alarms()]
        out[name] = {
            "checks_stable": sum(1 for r in found.reports
                                 if scenario.bars_after_change(r.current[1]) < 0),
            "alarms_stable": sum(1 for k in late if k < 0),
            "delay": next((k for k in late if k >= 0), None),
            "replay_s": time.perf_counter() - began,
        }  # fmt: skip
    return out


def summarize(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    seeds = len(rows)
    with_alarm = sum(1 for r in rows if r[name]["alarms_stable"])
    checks = sum(r[name]["checks_stable"] for r in rows)
    alarms = sum(r[name]["alarms_stable"] for r in rows)
    delays = [r[name]["delay"] for r in rows]
    caught = [d for d in delays if d is not None]
    return {
        "seeds": seeds,
        "false_alarm_seeds": with_alarm,
        "false_alarm_rate_per_seed": with_alarm / seeds,
        "false_alarm_rate_per_check": alarms / checks if checks else None,
        "caught_within_20": sum(1 for d in caught if d < 20),
        "median_delay": sorted(caught)[len(caught) // 2] if caught else None,
        "max_delay": max(caught) if caught else None,
        "delays": delays,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="the seeds are this one on")
    args = parser.parse_args()
    import logging

    from warehouse import embedded

    for noisy in ("mlflow", "psycopg", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    console = Console()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="qtis-regime-") as tmp:
        work = Path(tmp)
        admin = embedded.start(work / "pg")
        try:
            with Progress(console=console) as progress:
                task = progress.add_task("seeds (build, train, replay)", total=args.seeds)
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    rows.append(one_seed(admin, seed, work))
                    progress.advance(task)
        finally:
            embedded.stop(work / "pg")
    found = {name: summarize(rows, name) for name in ("calibrated", "fixed")}
    last = args.first_seed + args.seeds - 1
    table = Table("monitor", "seeds with a false alarm (120 stable bars each)",
                  "false alarms per stable check", "caught within 20 bars", "delay median / max",
                  title=f"drift detection on a regime change, seeds {args.first_seed}-{last}",
                  )  # fmt: skip
    for name, s in found.items():
        table.add_row(
            name + (" (default)" if name == "calibrated" else " (baseline)"),
            f"{s['false_alarm_seeds']} of {s['seeds']} ({s['false_alarm_rate_per_seed']:.0%})",
            f"{s['false_alarm_rate_per_check']:.2%}",
            f"{s['caught_within_20']} of {s['seeds']}",
            f"{s['median_delay']} / {s['max_delay']} bars",
        )
    console.print(table)
    figures = {
        "params": vars(args),
        "summary": found,
        "seeds": rows,
        "total_s": time.perf_counter() - started,
    }
    file = "regime.json" if args.first_seed == 0 else f"regime_seeds{args.first_seed}-{last}.json"
    write("regime", figures, console, file=file)


if __name__ == "__main__":
    main()
