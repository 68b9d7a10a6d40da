"""The pipeline's top-level commands: ``qtis ingest``, ``train``, ``ensemble``, ``update``,
``explain`` and ``tune`` - each parses its options, runs the step of the package below, and
prints its tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from cli.common import console, fail, ready_url, write_json
from cli.render.ingest import print_ingest
from cli.render.training import (
    print_evaluation,
    print_explanation,
    print_registered,
    print_tuned,
    print_tuning,
    print_update,
)
from cli.render.transfer import print_fine_tuning
from training.families import (
    FAMILIES,
    MODEL_HELP,
    SEED_FAMILIES,
    fine_tuned_variants,
    parse_families,
    parse_training,
)
from training.settings import TrackingSettings, TuningSettings
from training.workers import prestart
from warehouse.ingest import ingest as run_ingest
from warehouse.providers import SOURCES, DataSourceError, make_provider
from warehouse.settings import get_settings

if TYPE_CHECKING:
    from training.runner import TrainConfig, TrainingRun


def _parse_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        if "=" not in pair:
            raise fail(f"--map expects HEADER=COLUMN, got {pair!r}")
        header, column = pair.split("=", 1)
        mapping[header.strip()] = column.strip()
    return mapping


def _split_symbols(symbols: list[str] | None) -> list[str] | None:
    if not symbols:
        return None
    return [s.strip().upper() for item in symbols for s in item.split(",") if s.strip()]


def _families(model: str) -> tuple[str, ...]:
    try:
        return parse_families(model)
    except ValueError as exc:
        raise fail(str(exc)) from exc


TRAIN_MODEL_HELP = (
    f"{MODEL_HELP}; a fine-tuned variant such as lstm+ft_symbol trains its family as "
    "--fine-tune symbol does"
)


def _training_models(model: str, fine_tune: str | None) -> tuple[tuple[str, ...], str | None]:
    try:
        return parse_training(model, fine_tune)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def _parse_params(pairs: list[str]) -> dict[str, dict]:
    """FAMILY.NAME=VALUE overrides (values parsed as YAML: 0, 1e-3, [16, 8], true)."""
    # deferred: training.runner pulls torch, lightning, mlflow and xgboost (~5 s measured), which
    # would load on every qtis command
    from training.runner import override_params

    raw: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        family, dot, name = key.strip().partition(".")
        if not sep or not dot or family not in FAMILIES:
            raise fail(f"--param expects FAMILY.NAME=VALUE with FAMILY in {FAMILIES}, got {pair!r}")
        parsed = yaml.safe_load(value)
        raw.setdefault(family, {})[name] = tuple(parsed) if isinstance(parsed, list) else parsed
    try:
        return {family: override_params(family, values) for family, values in raw.items()}
    except ValueError as exc:
        raise fail(str(exc)) from exc


def ingest(
    source: Annotated[str, typer.Option(help=f"One of: {', '.join(SOURCES)}")] = "bundled",
    path: Annotated[Path | None, typer.Option(help="CSV/Parquet file or directory")] = None,
    symbols: Annotated[
        list[str] | None, typer.Option(help="Symbols (repeat or comma-separate)")
    ] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="HEADER=COLUMN, e.g. Px_Last=close")
    ] = None,
    layout: Annotated[
        str,
        typer.Option(
            help="csv/parquet: long (symbol, ts, close [, open, high, low, volume]), wide (a "
            "date column and one column of closes per symbol) or auto"
        ),
    ] = "auto",
    n_symbols: Annotated[int, typer.Option(help="synthetic: symbols")] = 20,
    n_bars: Annotated[int, typer.Option(help="synthetic: bars per symbol")] = 1000,
    freq: Annotated[str, typer.Option(help="synthetic: bar length (1D, 5min, ...)")] = "1D",
    seed: Annotated[int, typer.Option(help="synthetic: random seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Load bars into market.bars (same code path as the Dagster asset raw_bars)."""
    synthetic = {"n_symbols": n_symbols, "n_bars": n_bars, "freq": freq, "seed": seed}
    try:
        provider = make_provider(source, path, _parse_map(map_ or []), synthetic, layout=layout)
        url = ready_url()
        if as_json:
            report = run_ingest(provider, url, get_settings(), _split_symbols(symbols))
        else:
            with console.status("ingesting") as status:
                report = run_ingest(
                    provider,
                    url,
                    get_settings(),
                    _split_symbols(symbols),
                    progress=lambda msg: status.update(msg),
                )
    except DataSourceError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return
    print_ingest(console, report)


def _join_nodes(num_nodes: int, node_rank: int) -> int:
    """Join the other machines' training (if any); this process's global rank, which alone
    prints (the other ranks would repeat every table)."""
    from training.distributed import global_rank, join_nodes  # deferred: torch, as in train

    try:
        join_nodes(num_nodes, node_rank)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    rank = global_rank()
    if rank:
        console.quiet = True
    return rank


def train(
    model: Annotated[str, typer.Option(help=TRAIN_MODEL_HELP)] = ",".join(SEED_FAMILIES),
    size: Annotated[
        str, typer.Option(help="network sizes: seed (the spec's), small, tiny")
    ] = "seed",
    epochs: Annotated[int, typer.Option(help="max epochs (early stopping on validation)")] = 20,
    window: Annotated[int, typer.Option(help="bars per input window")] = 60,
    splits: Annotated[int, typer.Option(help="walk-forward test folds")] = 4,
    cost_bps: Annotated[float, typer.Option(help="transaction cost per unit traded")] = 5.0,
    symbols: Annotated[list[str] | None, typer.Option(help="restrict to these symbols")] = None,
    seed: Annotated[int, typer.Option(help="random seed (Lightning seed_everything)")] = 7,
    accelerator: Annotated[str, typer.Option(help="auto (a GPU if found), cpu, gpu")] = "auto",
    devices: Annotated[str, typer.Option(help="per node: auto (all GPUs or 1 CPU), 1, 2")] = "auto",
    strategy: Annotated[str, typer.Option(help="Lightning strategy (auto, ddp, ...)")] = "auto",
    precision: Annotated[str, typer.Option(help="32, bf16-mixed, 16-mixed (networks)")] = "32",
    num_nodes: Annotated[int, typer.Option(help="machines, each running this command")] = 1,
    node_rank: Annotated[int, typer.Option(help="this machine's rank (0 reports)")] = 0,
    json_out: Annotated[Path | None, typer.Option(help="also write the results as JSON")] = None,
    track: Annotated[
        bool, typer.Option(help="log runs to MLflow and register the final models")
    ] = True,
    tuned: Annotated[
        bool, typer.Option(help="start from the best trial of each family's Optuna study")
    ] = True,
    param: Annotated[
        list[str] | None,
        typer.Option(help="FAMILY.NAME=VALUE, e.g. lstm.dropout=0 or xgboost.max_depth=3"),
    ] = None,
    explain_samples: Annotated[
        int, typer.Option(help="bars the final models' SHAP values are computed on (0 = off)")
    ] = 200,
    holdout: Annotated[
        float | None,
        typer.Option(
            help="latest share of bars the registered models never see, labels included, so "
            "they can be backtested out of sample (0: train on all history, for live trading)"
            " [default: 0.15]"
        ),
    ] = None,
    fine_tune: Annotated[
        str | None,
        typer.Option(
            help="symbol or sector: also fine-tune each window network per group from its "
            "pre-trained weights, evaluate it beside it and register it (qtis-lstm-ft-symbol), "
            "served by symbol"
        ),
    ] = None,
    fine_tune_steps: Annotated[int, typer.Option(help="AdamW steps per group")] = 50,
) -> None:
    """Walk-forward training and out-of-sample evaluation next to the baselines.

    --num-nodes M: run this on M machines, each with its --node-rank and MASTER_ADDR/MASTER_PORT
    (node 0's address, a free port); only global rank 0 prints, logs and writes --json-out."""
    # deferred: torch, lightning, mlflow and xgboost (~5 s) would load on every qtis command
    from training.runner import TrainConfig

    rank = _join_nodes(num_nodes, node_rank)
    families, fine_tune = _training_models(model, fine_tune)
    config = TrainConfig(
        models=families, size=size, window=window, epochs=epochs, splits=splits,
        cost_bps=cost_bps, seed=seed, accelerator=accelerator, strategy=strategy,
        devices=int(devices) if devices.isdigit() else devices, precision=precision,
        num_nodes=num_nodes, params=_parse_params(param or []), explain_samples=explain_samples,
        fine_tune=fine_tune, fine_tune_steps=fine_tune_steps,
        **({} if holdout is None else {"holdout": holdout}),
    )  # fmt: skip
    result = _run_training(config, _split_symbols(symbols), track, tuned)
    report = result.evaluation.to_dict()
    print_evaluation(console, report)
    if result.fine_tuning:
        report["fine_tuning"] = result.fine_tuning
        print_fine_tuning(console, report)
    print_registered(console, result.registered)
    if json_out and rank == 0:
        write_json(json_out, report | {"registered": result.registered_info()})


def _run_training(
    config: TrainConfig, symbols: list[str] | None, track: bool, tuned: bool
) -> TrainingRun:
    """``qtis train``'s run: tuned parameters (``tuned``), then the training with its progress."""
    # deferred: torch, lightning, mlflow and xgboost (~5 s) would load on every qtis command
    from training.runner import run_training

    try:
        config.factories()
        url = ready_url()
        if tuned:
            from training.studies import with_tuned_params  # deferred: as above

            config = with_tuned_params(url, config, TuningSettings())
            print_tuned(console, config.tuning)
        with console.status("training") as status:

            def on_fold(name: str, k: int) -> None:
                step = f"fold {k + 1}/{config.splits}" if k >= 0 else "final fit on all history"
                status.update(f"{step}: fitting {name}")

            return run_training(
                url, config, symbols, on_fold, track=track, tracking=TrackingSettings()
            )
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc


def ensemble(
    combiner: Annotated[
        str,
        typer.Option(
            help="stack (least squares), vote (inverse recent error) or select (best"
            " recent member per volatility regime)"
        ),
    ] = "stack",
    lookback: Annotated[int, typer.Option(help="bars of known labels vote/select weigh")] = 63,
    regime_feature: Annotated[str, typer.Option(help="feature splitting the regimes")] = "hv_20",
    json_out: Annotated[Path | None, typer.Option(help="also write the results as JSON")] = None,
) -> None:
    """Combine the latest registered members into qtis-ensemble on their out-of-fold
    predictions (same code path as the Dagster asset ensemble_model); every combiner is scored
    out of sample next to them and the baselines, and the weights over time are stored."""
    # deferred: training.ensemble pulls torch, lightning, mlflow and xgboost (~5 s), as in train
    from training.ensemble import run_ensemble

    try:
        url = ready_url()
        with console.status(f"combining the members ({combiner})"):
            run = run_ensemble(url, regime_feature=regime_feature, tracking=TrackingSettings(),
                               combiner=combiner, lookback=lookback)  # fmt: skip
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    report = run.result.evaluation.to_dict() | {"combiner": combiner}
    print_evaluation(console, report)
    print_registered(console, {"ensemble": run.registered})
    console.print(f"weights over time: `qtis models weights {run.registered['version']}`")
    if json_out:
        write_json(json_out, report | {"ensemble_weights": run.bundle.stack.weights()})


def update(
    model: Annotated[
        str | None,
        typer.Option(
            help=f"{', '.join(FAMILIES)} (default: the champion's family, else the most "
            "recently registered)"
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(help="tree models: boosting rounds to add")] = 50,
    steps: Annotated[int, typer.Option(help="networks: fine-tuning optimizer steps (max)")] = 50,
    lr: Annotated[float, typer.Option(help="networks: fine-tuning learning rate")] = 1e-4,
    holdout: Annotated[
        float, typer.Option(help="share of the new bars held out (after a purge) to compare")
    ] = 0.2,
    json_out: Annotated[Path | None, typer.Option(help="also write the result as JSON")] = None,
) -> None:
    """Online update: fold the bars labelled since the model was trained into it (no full
    retrain) and register the next version, pending promotion."""
    # deferred: torch, lightning, mlflow and xgboost (~5.5 s measured) would load on every qtis
    # command
    from training.online import update_model

    try:
        url = ready_url()
        with console.status("updating"):
            result = update_model(
                url, model, tracking=TrackingSettings(), rounds=rounds, steps=steps, lr=lr,
                holdout=holdout,
            )  # fmt: skip
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    print_update(console, result)
    if json_out:
        write_json(json_out, result.to_dict())


def explain(
    model: Annotated[
        str | None,
        typer.Option(
            help=f"{', '.join(FAMILIES)}, or a fine-tuned one such as lstm+ft_symbol (default: "
            "the champion's family)"
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="registered version (default: @champion, else latest)")
    ] = None,
    samples: Annotated[int, typer.Option(help="most recent bars to explain")] = 200,
    top: Annotated[int, typer.Option(help="features to show")] = 15,
    plot: Annotated[
        Path | None, typer.Option(help="write the SHAP summary plot (PNG) here")
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="also write the result as JSON")] = None,
) -> None:
    """SHAP attributions of a registered model on the most recent bars, next to the ranking
    stored when that version was registered (a first look at attribution drift)."""
    # deferred: shap, torch, lightning and mlflow (~6 s measured) would load on every qtis command
    from training.explain import explain_registered, summary_figure

    try:
        url = ready_url()
        with console.status("computing SHAP values"):
            found = explain_registered(
                url, model, version, samples=samples, tracking=TrackingSettings()
            )
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    summary = found.to_dict(top)
    print_explanation(console, found, summary, top)
    if plot:
        import matplotlib.pyplot as plt  # deferred: ~0.3 s measured on every qtis command

        plot.parent.mkdir(parents=True, exist_ok=True)
        figure = summary_figure(found.attributions)
        figure.savefig(plot, dpi=110, bbox_inches="tight")
        plt.close(figure)
        console.print(f"wrote {plot}")
    if json_out:
        write_json(json_out, summary)


def tune(
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "xgboost",
    trials: Annotated[int, typer.Option(help="trials to add to the study")] = 20,
    workers: Annotated[int, typer.Option(help="worker processes sharing the study")] = 1,
    size: Annotated[str, typer.Option(help="network size preset the widths scale")] = "small",
    epochs: Annotated[int, typer.Option(help="max epochs per fold (neural models)")] = 5,
    window: Annotated[int, typer.Option(help="bars per input window")] = 60,
    splits: Annotated[int, typer.Option(help="inner walk-forward folds")] = 2,
    xgb_estimators: Annotated[int, typer.Option(help="max boosting rounds")] = 300,
    score: Annotated[str, typer.Option(help="objective: r2 (vs zero forecast) or ic")] = "r2",
    pruner: Annotated[
        str | None,
        typer.Option(
            help="median, successive-halving, hyperband or none; default QTIS_TUNE_PRUNER"
        ),
    ] = None,
    study: Annotated[str | None, typer.Option(help="study name (default qtis-<model>)")] = None,
    timeout: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    seed: Annotated[int, typer.Option(help="sampler seed (trial n draws with seed + n)")] = 7,
    fine_tune: Annotated[
        str | None,
        typer.Option(
            help="symbol or sector: search each network's fine-tune (steps, lr, min rows) in "
            "its own study, qtis-<model>+ft_<grouping>, that `qtis train --fine-tune` reads"
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="also write the results as JSON")] = None,
) -> None:
    """Optuna search on the history before the reported test folds; studies live in Postgres
    and `qtis train` starts from their best trial."""
    chosen = _families(model)
    if fine_tune is not None:
        try:
            chosen = fine_tuned_variants(chosen, fine_tune)
        except ValueError as exc:
            raise fail(str(exc)) from exc
    if workers > 1:
        prestart()  # the helpers' fork server imports the training stack alongside us
    # deferred: optuna, torch, lightning, mlflow and xgboost (~5 s measured) would load on every
    # qtis command
    from training.tuning import TuneConfig  # deferred: as above
    from training.tuning import tune as run_tune  # deferred: as above

    stores = {"tracking": TrackingSettings(), "tuning": TuningSettings()}
    try:
        shared = {
            "trials": trials, "workers": workers, "size": size, "epochs": epochs,
            "window": window, "splits": splits, "xgb_estimators": xgb_estimators, "score": score,
            "pruner": pruner or stores["tuning"].pruner, "timeout": timeout, "seed": seed,
            "threads": stores["tuning"].threads,
            "study": study if len(chosen) == 1 else None,
        }  # fmt: skip
        configs = [TuneConfig(family=family, **shared) for family in chosen]
        url = ready_url()
        results = []
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            for config in configs:
                task = progress.add_task(f"{config.name} ({workers} workers)", total=trials)
                results.append(
                    run_tune(
                        url, config, lambda n, _, t=task: progress.update(t, completed=n), **stores
                    )
                )
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    print_tuning(console, results, score)
    console.print("dashboard: qtis optuna dashboard; `qtis train` now starts from these params")
    if json_out:
        write_json(json_out, [r.to_dict() for r in results])
