"""Tuning and scale-out on this machine, each compared with a baseline measured in the same run:
trials per minute with 1 vs 2 Optuna workers on one study, pruning (median) vs none on the same
study (time and best score), and Lightning DDP with 2 CPU processes vs 1.

    python -m bench.tuning [--trials 12] [--pruning-trials 20] [--family lstm]

Uses scratch databases (bench_tuning, bench_optuna) on the QTIS server with the bundled sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench._results import write
from training.settings import TrackingSettings, TuningSettings
from training.tuning import TuneConfig, open_study, tune
from warehouse.db import drop_database, recreate_database, sqlalchemy_url
from warehouse.settings import get_settings


def prepare(console: Console) -> str:
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse.ingest import ingest
    from warehouse.providers.bundled import BundledProvider
    from warehouse.schema import migrate

    url = recreate_database("bench_tuning", get_settings())
    migrate(url)
    with console.status("loading the bundled sample and building features"):
        ingest(BundledProvider(), url, get_settings())
        update_garch(url)
        assert build(url, full_refresh=True, tests=False).success
    return url


def candidates(family: str, n: int, seed: int = 3) -> list[dict]:
    """``n`` parameter sets drawn at random once: every compared study evaluates exactly these
    (enqueued), so trial costs and scores are like for like."""
    import optuna

    from training.studies import suggest

    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [suggest(draws.ask(), family) for _ in range(n)]


def run_study(url: str, name: str, params: list[dict], **settings) -> dict:
    import optuna

    config = TuneConfig(study=name, trials=len(params), **settings)
    tracking, tuning = TrackingSettings(), TuningSettings()
    study = open_study(url, config, tuning=tuning)
    for p in params:
        study.enqueue_trial(p)
    result = tune(url, config, track=False, tracking=tracking, tuning=tuning)
    trials = optuna.load_study(study_name=name, storage=os.environ["QTIS_OPTUNA_STORAGE"]).trials
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return {
        "study": name,
        "workers": config.workers,
        "threads_per_worker": config.thread_count(),
        "pruner": config.pruner,
        "trials": result.trials_run,
        "pruned": result.pruned,
        "seconds": result.seconds,
        "trials_per_minute": 60 * result.trials_run / result.seconds,  # with process start-up
        "trials_per_minute_in_study": 60 * len(trials) / span.total_seconds(),
        "mean_trial_seconds": sum(
            (t.datetime_complete - t.datetime_start).total_seconds() for t in trials
        )
        / len(trials),
        "by_worker": result.by_worker,
        "best_value": result.best_value,
        "best_trial_params": result.best_params,
    }


def bench_workers(url: str, family: str, trials: int) -> list[dict]:
    """The same candidates without pruning, on one study per setup: 1 worker with every core's
    thread, 1 worker with one thread (small models often train faster single-threaded, so this
    separates the gain of a second process from the cost of threads), 2 workers x 1 thread."""
    params = candidates(family, trials)
    common = {"family": family, "pruner": "none", "epochs": 3}
    setups = ((1, None), (1, 1), (2, 1))
    return [
        run_study(url, f"workers-{w}-threads-{t or 'all'}", params, workers=w, threads=t, **common)
        for w, t in setups
    ]


def bench_pruning(url: str, family: str, trials: int) -> list[dict]:
    """The same candidates with no pruner, the median pruner and Hyperband, one worker with one
    thread each: pruning keeps the best score only if it never stops the candidate that would
    have won."""
    params = candidates(family, trials, seed=5)
    common = {"family": family, "workers": 1, "threads": 1, "epochs": 4}
    if family == "xgboost":
        common |= {"xgb_estimators": 300}
    return [
        run_study(url, f"pruning-{family}-{p}", params, pruner=p, **common)
        for p in ("none", "median", "hyperband")
    ]


def bench_ddp(url: str, tmp: Path, epochs: tuple[int, int] = (2, 6)) -> list[dict]:
    """`qtis train` on one seed-size LSTM fold, 1 process vs DDP with 2 (gloo), each at two epoch
    counts with early stopping off: the difference is pure training time, without process-group
    start-up and prediction, so throughput = windows x extra epochs / extra seconds."""
    rows = []
    for devices in (1, 2):
        runs = {}
        for n in epochs:
            out = tmp / f"ddp{devices}-{n}.json"
            cmd = [
                sys.executable, "-m", "cli.app", "train", "--model", "lstm", "--size",
                "seed", "--epochs", str(n), "--splits", "1", "--no-track", "--no-tuned",
                "--param", "lstm.patience=1000", "--strategy", "ddp", "--devices", str(devices),
                "--json-out", str(out),
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(
                cmd,
                env=os.environ | {"QTIS_DATABASE_URL": url},
                capture_output=True,
                text=True,
                timeout=1800,
            )
            wall = time.perf_counter() - started
            if done.returncode:
                raise RuntimeError(done.stderr[-2000:])
            report = json.loads(out.read_text())["models"]["lstm"]
            runs[n] = (report, wall)
        (short, short_wall), (long, long_wall) = runs[epochs[0]], runs[epochs[1]]
        fold = long["folds"][0]
        extra = long["fit_seconds"] - short["fit_seconds"]
        rows.append(
            {
                "processes": fold["processes"],
                "train_windows": fold["train_rows"],
                "epochs": list(epochs),
                "fit_seconds": [short["fit_seconds"], long["fit_seconds"]],
                "wall_seconds": [short_wall, long_wall],
                "windows_per_second": fold["train_rows"] * (epochs[1] - epochs[0]) / extra,
                "oos_mse_h1": fold["mse_h1"],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="lstm", choices=("xgboost", "lstm", "transformer"))
    parser.add_argument("--trials", type=int, default=40, help="trials per worker-count study")
    parser.add_argument("--pruning-trials", type=int, default=24)
    parser.add_argument(
        "--pruning-families", default="lstm,xgboost", help="families of the pruning studies"
    )
    args = parser.parse_args()
    console = Console(width=150)  # the table stays readable in logs
    url = prepare(console)
    optuna_url = recreate_database("bench_optuna", get_settings())
    os.environ["QTIS_OPTUNA_STORAGE"] = sqlalchemy_url(optuna_url)
    try:
        with console.status("1 vs 2 workers"):
            workers = bench_workers(url, args.family, args.trials)
        pruning = {}
        for family in args.pruning_families.split(","):
            with console.status(f"{family}: median pruning and Hyperband vs none"):
                pruning[family] = bench_pruning(url, family, args.pruning_trials)
        with console.status("DDP: 1 vs 2 processes"):
            ddp = bench_ddp(url, Path(os.environ.get("TMPDIR", "/tmp")))
    finally:
        drop_database(optuna_url)
        drop_database(url)

    one = max(workers[:2], key=lambda r: r["trials_per_minute"])  # the faster single worker
    two = workers[2]
    speedup = two["trials_per_minute"] / one["trials_per_minute"]
    in_study = two["trials_per_minute_in_study"] / one["trials_per_minute_in_study"]
    ddp_ratio = ddp[1]["windows_per_second"] / ddp[0]["windows_per_second"]
    table = Table("measure", "baseline", "value", "ratio", title="Tuning and scale-out")
    for row in workers:
        table.add_row(
            f"{args.family}: {row['workers']} worker(s) x {row['threads_per_worker']} thread(s), "
            f"{row['trials']} trials",
            "",
            f"{row['trials_per_minute']:.1f} trials/min, {row['mean_trial_seconds']:.2f} s/trial",
            "",
        )
    table.add_row(
        "trials/min, 2 workers vs the faster single worker (wall, with start-up)",
        f"{one['trials_per_minute']:.1f}",
        f"{two['trials_per_minute']:.1f}",
        f"{speedup:.2f}x (target >= 1.6x)",
    )
    table.add_row(
        "trials/min, same, first trial start to last end",
        f"{one['trials_per_minute_in_study']:.1f}",
        f"{two['trials_per_minute_in_study']:.1f}",
        f"{in_study:.2f}x",
    )
    saved = {}
    for family, (none, *pruned) in pruning.items():
        for row in pruned:
            key = f"{family}-{row['pruner']}"
            saved[key] = 1 - row["seconds"] / none["seconds"]
            table.add_row(
                f"{family}: tuning time, {row['pruner']} vs none ({row['trials']} trials)",
                f"{none['seconds']:.1f} s",
                f"{row['seconds']:.1f} s ({row['pruned']} pruned)",
                f"{saved[key]:.0%} saved (target >= 30%)",
            )
            table.add_row(
                f"{family}: best objective (OOS R² vs zero), {row['pruner']} vs none",
                f"{none['best_value']:.5f}",
                f"{row['best_value']:.5f}",
                f"{row['best_value'] - none['best_value']:+.5f}"
                + (" (same best trial)" if row["best_trial_params"] == none["best_trial_params"]
                   else ""),
            )  # fmt: skip
    table.add_row(
        "LSTM (seed size) training windows/s, DDP 2 processes vs 1 (marginal epochs)",
        f"{ddp[0]['windows_per_second']:,.0f}",
        f"{ddp[1]['windows_per_second']:,.0f}",
        f"{ddp_ratio:.2f}x",
    )
    for row in ddp:
        table.add_row(
            f"  {row['processes']} process(es): fit + predict at {row['epochs'][0]} / "
            f"{row['epochs'][1]} epochs",
            "",
            " / ".join(f"{t:.1f} s" for t in row["fit_seconds"]),
            "",
        )
    console.print(table)
    figures = {
        "family": args.family,
        "workers": workers,
        "workers_speedup": speedup,
        "workers_speedup_in_study": in_study,
        "pruning": pruning,
        "pruning_time_saved": saved,
        "ddp": ddp,
        "ddp_throughput_ratio": ddp_ratio,
    }
    write("tuning", figures, console)


if __name__ == "__main__":
    main()
