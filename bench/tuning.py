"""Tuning and scale-out on this machine, each compared with a baseline measured in the same run:
trials per minute with 1 vs 2 Optuna workers on one study, the pruners (median, successive
halving, Hyperband) vs none on the same study (time and best trial), and Lightning DDP with 2
CPU processes vs 1.

    python -m bench.tuning [--trials 24] [--pruning-trials 24] [--parts workers,pruning,ddp]

The data is a synthetic market with a planted signal (each asset's returns are AR(1) with
coefficient ``--momentum``, so the lagged return predicts the next one and a good candidate shows
in its first epochs' validation loss), loaded into a scratch database (bench_tuning; the studies
go to bench_optuna) on the QTIS server and built into features as the pipeline does. A run that
leaves out a part keeps that part's last figures in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from bench._results import write
from training.settings import PRUNERS, TrackingSettings, TuningSettings
from training.tuning import TuneConfig, open_study, tune
from training.workers import context, prestart
from warehouse.db import drop_database, recreate_database, sqlalchemy_url
from warehouse.settings import get_settings


def prepare(console: Console, momentum: float) -> str:
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse.ingest import ingest
    from warehouse.providers.synthetic import SyntheticMarket
    from warehouse.schema import migrate

    url = recreate_database("bench_tuning", get_settings())
    migrate(url)
    with console.status("loading a synthetic market with a planted signal, building features"):
        market = SyntheticMarket(n_symbols=8, n_bars=1500, momentum=momentum, seed=11)
        ingest(market, url, get_settings())
        update_garch(url)
        assert build(url, full_refresh=True, tests=False).success
    return url


def planted(url: str) -> float:
    """Correlation of the lagged-return feature with the next bar's return in the training set:
    the planted signal as the models see it (about ``--momentum``)."""
    from training.data import load_training_data

    data = load_training_data(url)
    x, y = data.features[:, data.feature_names.index("ret_1")], data.returns[:, 0]
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def start_up() -> dict[str, float]:
    """Seconds from nothing to a running worker process: the fork server's first start (it
    imports the training stack; paid once per process) and a worker forked from it after."""
    seconds = {}
    for key in ("cold", "warm"):
        started = time.perf_counter()
        prestart()
        helper = context().Process(target=time.sleep, args=(0,))
        helper.start()
        helper.join()
        seconds[key] = time.perf_counter() - started
    return seconds


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
    start = min(t.datetime_start for t in trials)
    span = max(t.datetime_complete for t in trials) - start
    first = {}
    for t in trials:
        w = t.user_attrs["worker"]
        first[w] = min(first.get(w, t.datetime_start), t.datetime_start)
    return {
        "study": name,
        "workers": config.workers,
        "threads_per_worker": config.thread_count(),
        "pruner": config.pruner,
        "trials": result.trials_run,
        "pruned": result.pruned,
        "seconds": result.seconds,
        "trials_per_minute": 60 * result.trials_run / result.seconds,  # with worker start-up
        "trials_per_minute_in_study": 60 * len(trials) / span.total_seconds(),
        "first_trial_after_s": {w: (t - start).total_seconds() for w, t in sorted(first.items())},
        "mean_trial_seconds": sum(
            (t.datetime_complete - t.datetime_start).total_seconds() for t in trials
        )
        / len(trials),
        "by_worker": result.by_worker,
        "best_value": result.best_value,
        "best_trial": result.best_trial,
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


def bench_pruning(url: str, family: str, trials: int, epochs: int, seed: int) -> list[dict]:
    """The same candidates with each pruner, one worker with one thread (20-bar windows, so a
    study stays short): a pruner keeps the best trial only if it never stops the candidate
    that would have won."""
    params = candidates(family, trials, seed=seed)
    common = {"family": family, "workers": 1, "threads": 1, "epochs": epochs, "window": 20}
    runs = [
        run_study(url, f"pruning-{seed}-{p}", params, pruner=p, **common)
        for p in ("none", *(p for p in PRUNERS if p != "none"))
    ]
    runs[0]["rank_correlation_by_step"] = curve_information(f"pruning-{seed}-none")
    return runs


def curve_information(name: str) -> list[float]:
    """Spearman correlation, across the unpruned study's trials, between the validation curve
    at each step (the latest fold's epochs first, then the earlier fold's) and the objective:
    how far an early step tells the final ranking."""
    import optuna

    trials = optuna.load_study(study_name=name, storage=os.environ["QTIS_OPTUNA_STORAGE"]).trials
    steps = sorted({s for t in trials for s in t.intermediate_values})
    rho = []
    for step in steps:
        pairs = [
            (t.intermediate_values[step], t.value) for t in trials if step in t.intermediate_values
        ]
        rho.append(float(spearmanr(*zip(*pairs, strict=True))[0]) if len(pairs) > 2 else np.nan)
    return rho


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


def show_workers(table: Table, workers: list[dict], started: dict[str, float]) -> dict:
    one = max(workers[:2], key=lambda r: r["trials_per_minute"])  # the faster single worker
    two = workers[2]
    figures = {
        "workers": workers,
        "worker_start_up_s": started,
        "workers_speedup": two["trials_per_minute"] / one["trials_per_minute"],
        "workers_speedup_in_study": two["trials_per_minute_in_study"]
        / one["trials_per_minute_in_study"],
    }
    table.add_row(
        "worker process start-up: fork server's first start (imports, once) / a worker after",
        "",
        f"{started['cold']:.2f} s / {started['warm']:.3f} s",
        "",
    )
    for row in workers:
        table.add_row(
            f"{row['workers']} worker(s) x {row['threads_per_worker']} thread(s), "
            f"{row['trials']} trials",
            "",
            f"{row['trials_per_minute']:.1f} trials/min, {row['mean_trial_seconds']:.2f} s/trial",
            "",
        )
    lag = two["first_trial_after_s"].get(1, float("nan"))
    table.add_row(
        f"trials/min, 2 workers vs the faster single worker (wall of tune(); worker 1's first "
        f"trial {lag:.2f} s after worker 0's)",
        f"{one['trials_per_minute']:.1f}",
        f"{two['trials_per_minute']:.1f}",
        f"{figures['workers_speedup']:.2f}x (target >= 1.6x)",
    )
    table.add_row(
        "trials/min, same, first trial start to last end",
        f"{one['trials_per_minute_in_study']:.1f}",
        f"{two['trials_per_minute_in_study']:.1f}",
        f"{figures['workers_speedup_in_study']:.2f}x",
    )
    return figures


def show_pruning(table: Table, pruning: dict[str, list[dict]], signal: float) -> dict:
    saved: dict[str, dict[str, float]] = {}
    same: dict[str, dict[str, bool]] = {}
    table.add_row("planted signal: corr(ret_1 feature, next return)", "", f"{signal:.3f}", "")
    for seed, (none, *pruned) in pruning.items():
        rho = none["rank_correlation_by_step"]
        table.add_row(
            f"candidates {seed}: rank corr. of val loss with objective, latest fold's epochs",
            "",
            " ".join(f"{r:+.2f}" for r in rho[: len(rho) // 2]),
            "",
        )
        saved[seed], same[seed] = {}, {}
        for row in pruned:
            key = row["pruner"]
            saved[seed][key] = 1 - row["seconds"] / none["seconds"]
            same[seed][key] = row["best_trial_params"] == none["best_trial_params"]
            table.add_row(
                f"candidates {seed}: {key} vs none ({row['trials']} trials; best trial)",
                f"{none['seconds']:.1f} s (#{none['best_trial']} {none['best_value']:.4f})",
                f"{row['seconds']:.1f} s, {row['pruned']} pruned "
                f"(#{row['best_trial']} {row['best_value']:.4f})",
                f"{saved[seed][key]:.0%} saved, "
                + ("same best" if same[seed][key] else "OTHER best"),
            )
    return {"pruning": pruning, "pruning_time_saved": saved, "pruning_same_best": same}


def show_ddp(table: Table, ddp: list[dict]) -> dict:
    ratio = ddp[1]["windows_per_second"] / ddp[0]["windows_per_second"]
    table.add_row(
        "LSTM (seed size) training windows/s, DDP 2 processes vs 1 (marginal epochs)",
        f"{ddp[0]['windows_per_second']:,.0f}",
        f"{ddp[1]['windows_per_second']:,.0f}",
        f"{ratio:.2f}x",
    )
    for row in ddp:
        table.add_row(
            f"  {row['processes']} process(es): fit + predict at {row['epochs'][0]} / "
            f"{row['epochs'][1]} epochs",
            "",
            " / ".join(f"{t:.1f} s" for t in row["fit_seconds"]),
            "",
        )
    return {"ddp": ddp, "ddp_throughput_ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="lstm", choices=("xgboost", "lstm", "transformer"))
    parser.add_argument("--trials", type=int, default=24, help="trials per worker-count study")
    parser.add_argument("--pruning-trials", type=int, default=16)
    parser.add_argument("--pruning-seeds", default="5,6", help="candidate draws compared")
    parser.add_argument("--pruning-epochs", type=int, default=5, help="epochs per inner fold")
    parser.add_argument("--momentum", type=float, default=0.5, help="the planted AR(1) signal")
    parser.add_argument("--parts", default="workers,pruning,ddp")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    console = Console(width=150)  # the table stays readable in logs
    table = Table("measure", "baseline", "value", "ratio", title="Tuning and scale-out")
    started = time.perf_counter()
    url = prepare(console, args.momentum)
    optuna_url = recreate_database("bench_optuna", get_settings())
    os.environ["QTIS_OPTUNA_STORAGE"] = sqlalchemy_url(optuna_url)
    figures: dict = {"family": args.family, "momentum": args.momentum}
    try:
        if "workers" in parts:
            with console.status("1 vs 2 workers"):
                boot = start_up()
                figures |= show_workers(table, bench_workers(url, args.family, args.trials), boot)
        if "pruning" in parts:
            with console.status("pruners vs none"):
                runs = {
                    f"seed{seed}": bench_pruning(
                        url, args.family, args.pruning_trials, args.pruning_epochs, int(seed)
                    )
                    for seed in args.pruning_seeds.split(",")
                }
                figures |= show_pruning(table, runs, planted(url))
        if "ddp" in parts:
            with console.status("DDP: 1 vs 2 processes"):
                figures |= show_ddp(table, bench_ddp(url, Path(os.environ.get("TMPDIR", "/tmp"))))
    finally:
        drop_database(optuna_url)
        drop_database(url)
    console.print(table)
    write("tuning", figures | {"total_s": time.perf_counter() - started}, console, merge=True)


if __name__ == "__main__":
    main()
