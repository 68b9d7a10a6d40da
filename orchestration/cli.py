"""The root ``qtis`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.config import config_app
from cli.errors import QtisGroup
from orchestration.cli_common import console, fail
from orchestration.cli_common import ready_url as _ready_url
from orchestration.cli_models import models_app, serve
from orchestration.cli_monitor import monitor_app
from orchestration.cli_trade import trade_app
from warehouse import embedded
from warehouse.db import database_url, redact
from warehouse.providers import SOURCES, DataSourceError, make_provider
from warehouse.schema import bars_storage
from warehouse.settings import get_settings

app = typer.Typer(
    help="QTIS: Quantitative Trading Intelligence System.", no_args_is_help=True, cls=QtisGroup
)
db_app = typer.Typer(
    help="The Postgres warehouse (embedded unless QTIS_DATABASE_URL is set).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
features_app = typer.Typer(
    help="The feature store: dbt models over market.bars, GARCH, labels.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(trade_app, name="trade")
app.add_typer(monitor_app, name="monitor")
app.add_typer(config_app, name="config")
app.command()(serve)


@db_app.command("up")
def db_up() -> None:
    """Start the embedded server (if used) and apply schema migrations."""
    settings = get_settings()
    url = _ready_url()
    where = settings.pgdata if settings.uses_embedded else "external server"
    console.print(f"[green]database ready[/] ({where}); market.bars storage: {bars_storage(url)}")
    console.print(f"url: {redact(url)}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded server."""
    settings = get_settings()
    if not settings.uses_embedded:
        raise fail("QTIS_DATABASE_URL is set: QTIS does not manage that server")
    stopped = embedded.stop(settings.pgdata)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Is the database up, where is it, which schema revision."""
    settings = get_settings()
    if settings.uses_embedded:
        state = embedded.status(settings.pgdata)
        if not state.running:
            console.print(f"embedded server: [yellow]stopped[/] (data dir {state.pgdata})")
            raise typer.Exit(1)
        console.print(
            f"embedded server: [green]running[/] pid {state.pid}, data dir {state.pgdata}"
        )
    from warehouse.schema import current_revision, head_revision

    url = database_url(settings)
    console.print(f"url: {redact(url)}")
    console.print(f"schema revision: {current_revision(url)} (head {head_revision()})")
    console.print(f"market.bars storage: {bars_storage(url)}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (for psql, SQLAlchemy, notebooks)."""
    print(database_url())


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the QTIS database (extra arguments go to psql)."""
    url = database_url()
    psql = str(embedded.psql_path())
    os.execv(psql, [psql, url, *ctx.args])


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


def _parse_params(pairs: list[str]) -> dict[str, dict]:
    """FAMILY.NAME=VALUE overrides (values parsed as YAML: 0, 1e-3, [16, 8], true)."""
    import yaml

    from training.runner import FAMILIES, override_params

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


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help=f"One of: {', '.join(SOURCES)}")] = "bundled",
    path: Annotated[Path | None, typer.Option(help="CSV/Parquet file or directory")] = None,
    symbols: Annotated[
        list[str] | None, typer.Option(help="Symbols (repeat or comma-separate)")
    ] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="HEADER=COLUMN, e.g. Px_Last=close")
    ] = None,
    n_symbols: Annotated[int, typer.Option(help="synthetic: symbols")] = 20,
    n_bars: Annotated[int, typer.Option(help="synthetic: bars per symbol")] = 1000,
    freq: Annotated[str, typer.Option(help="synthetic: bar length (1D, 5min, ...)")] = "1D",
    seed: Annotated[int, typer.Option(help="synthetic: random seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Load bars into market.bars (same code path as the Dagster asset raw_bars)."""
    from warehouse.ingest import ingest as run_ingest

    synthetic = {"n_symbols": n_symbols, "n_bars": n_bars, "freq": freq, "seed": seed}
    try:
        provider = make_provider(source, path, _parse_map(map_ or []), synthetic)
        url = _ready_url()
        if as_json:
            report = run_ingest(provider, url, _split_symbols(symbols))
        else:
            with console.status("ingesting") as status:
                report = run_ingest(
                    provider, url, _split_symbols(symbols), progress=lambda msg: status.update(msg)
                )
    except DataSourceError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return
    console.print(
        f"[bold]{report.source}[/] ({report.origin}): {report.rows_in:,} rows read, "
        f"{report.loaded:,} loaded ({report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged), [{'red' if report.quarantined else 'green'}]"
        f"{report.quarantined:,} quarantined[/]"
    )
    if report.quarantine_reasons:
        table = Table("quarantine reason", "rows", title="market.bars_quarantine")
        for reason, count in report.quarantine_reasons.items():
            table.add_row(reason, f"{count:,}")
        console.print(table)
    if report.flags:
        console.print(
            "flagged (loaded, see market.bar_flags): "
            + ", ".join(f"{k} {v}" for k, v in report.flags.items())
        )


@features_app.command("build")
def features_build(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every row instead of only new bars")
    ] = False,
    select: Annotated[str | None, typer.Option(help="dbt selection, e.g. 'bar_features+'")] = None,
) -> None:
    """GARCH volatility, then dbt build (models + tests) - what the Dagster assets run."""
    from orchestration.feature_build import build_features, print_build

    url = _ready_url()
    report = build_features(url, console, full_refresh=full_refresh, select=select)
    print_build(console, url, report)
    if not report.dbt.success:
        raise typer.Exit(1)


@features_app.command("list")
def features_list() -> None:
    """Every feature column of features.bar_features, from transforms/feature_spec.yml."""
    from transforms.spec import default_spec

    spec = default_spec()
    table = Table("column", "kind", "stage", "parameters", "warm-up bars", title="feature spec")
    for f in spec.features:
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        for column, warmup in zip(f.outputs, f.warmups, strict=True):
            table.add_row(column, f.kind, f.stage, params, str(warmup))
    for column in spec.columns("calendar"):
        table.add_row(column, "calendar", "calendar", "", "0")
    g = spec.garch
    table.add_row(
        g.name, "garch", "python", f"window={g.window}, refit_every={g.refit_every}", str(g.min_obs)
    )
    console.print(table)
    console.print(
        f"{len(spec.columns())} features; labels: {', '.join(spec.label_columns())} "
        f"(definitions: docs/features.md)"
    )


@app.command()
def train(
    model: Annotated[str, typer.Option(help="lstm, transformer, xgboost or all")] = "all",
    size: Annotated[
        str, typer.Option(help="network sizes: seed (the spec's), small, tiny")
    ] = "seed",
    epochs: Annotated[int, typer.Option(help="max epochs (early stopping on validation)")] = 20,
    window: Annotated[int, typer.Option(help="bars per input window")] = 60,
    splits: Annotated[int, typer.Option(help="walk-forward test folds")] = 4,
    cost_bps: Annotated[float, typer.Option(help="transaction cost per unit traded")] = 5.0,
    symbols: Annotated[list[str] | None, typer.Option(help="restrict to these symbols")] = None,
    seed: Annotated[int, typer.Option(help="random seed (Lightning seed_everything)")] = 7,
    accelerator: Annotated[str, typer.Option(help="Lightning accelerator")] = "cpu",
    devices: Annotated[str, typer.Option(help="Lightning devices (e.g. 1, 2, auto)")] = "1",
    strategy: Annotated[str, typer.Option(help="Lightning strategy (auto, ddp, ...)")] = "auto",
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
) -> None:
    """Walk-forward training and out-of-sample evaluation next to the baselines.

    With --devices N --strategy ddp, Lightning runs N processes (this command is started again
    for ranks 1..N-1); only rank 0 prints, logs to MLflow and writes --json-out."""
    from orchestration.train_report import print_evaluation
    from training.runner import FAMILIES, TrainConfig, global_rank, run_training

    rank = global_rank()
    if rank:
        console.quiet = True
    models = FAMILIES if model == "all" else tuple(m.strip() for m in model.split(","))
    config = TrainConfig(
        models=models,
        size=size,
        window=window,
        epochs=epochs,
        splits=splits,
        cost_bps=cost_bps,
        seed=seed,
        accelerator=accelerator,
        devices=int(devices) if devices.isdigit() else devices,
        strategy=strategy,
        params=_parse_params(param or []),
        explain_samples=explain_samples,
        **({} if holdout is None else {"holdout": holdout}),
    )
    try:
        config.factories()
        url = _ready_url()
        if tuned:
            from training.tuning import with_tuned_params

            config = with_tuned_params(url, config)
            for family, info in config.tuning.items():
                console.print(
                    f"{family}: best of {info['trials']} trials of study {info['study']} "
                    f"(trial {info['best_trial']}, objective {info['best_value']:.5f})"
                )
        with console.status("training") as status:

            def on_fold(name: str, k: int) -> None:
                step = f"fold {k + 1}/{splits}" if k >= 0 else "final fit on all history"
                status.update(f"{step}: fitting {name}")

            result = run_training(url, config, _split_symbols(symbols), on_fold, track=track)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    report = result.evaluation.to_dict()
    print_evaluation(console, report)
    for family, info in result.registered.items():
        console.print(
            f"MLflow: {family} -> [bold]{info['registered']}[/] version {info['version']} "
            f"(run {info['run_id'][:8]}, {info['model_uri']})"
            + (
                f"; top features {', '.join(info['top_features'])}"
                if "top_features" in info
                else ""
            )
        )
    if json_out and rank == 0:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        registered = {
            f: {k: v for k, v in info.items() if k != "example"}
            for f, info in result.registered.items()
        }
        payload = report | {"registered": registered}
        json_out.write_text(json.dumps(payload, indent=2, default=str))
        console.print(f"wrote {json_out}")


@app.command()
def update(
    model: Annotated[
        str | None,
        typer.Option(
            help="lstm, transformer or xgboost (default: the champion's family, else "
            "the most recently registered)"
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(help="xgboost: boosting rounds to add")] = 50,
    steps: Annotated[int, typer.Option(help="networks: fine-tuning optimizer steps (max)")] = 50,
    lr: Annotated[float, typer.Option(help="networks: fine-tuning learning rate")] = 1e-4,
    holdout: Annotated[
        float, typer.Option(help="share of the new bars held out (after a purge) to compare")
    ] = 0.2,
    json_out: Annotated[Path | None, typer.Option(help="also write the result as JSON")] = None,
) -> None:
    """Online update: fold the bars labelled since the model was trained into it (no full
    retrain) and register the next version, pending promotion."""
    from training.online import update_model

    try:
        url = _ready_url()
        with console.status("updating"):
            result = update_model(url, model, rounds=rounds, steps=steps, lr=lr, holdout=holdout)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    base, new = result.metrics["base"], result.metrics["updated"]
    table = Table(
        "holdout metric", f"base v{result.base_version}", f"updated v{result.new_version}",
        title=f"{result.registered}: {result.rows_used:,} new rows learnt (through "
        f"{result.trained_through_after}), {result.holdout_rows:,} held out",
    )  # fmt: skip
    for key in ("mse_h1", "ic_h1", "mse_mean", "ic_mean"):
        cells = ("-" if v is None else f"{v:.6g}" for v in (base[key], new[key]))
        table.add_row(key, *cells)
    console.print(table)
    console.print(
        f"MLflow: {result.registered} version {result.new_version} (run {result.run_id[:8]}), "
        f"update of version {result.base_version}, promotion [yellow]pending[/]"
    )
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        console.print(f"wrote {json_out}")


@app.command()
def explain(
    model: Annotated[
        str | None,
        typer.Option(help="lstm, transformer or xgboost (default: the champion's family)"),
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
    from training.explain import explain_registered, summary_figure

    try:
        url = _ready_url()
        with console.status("computing SHAP values"):
            found = explain_registered(url, model, version, samples=samples)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    attributions = found.attributions
    horizons = [f"h{h}" for h in attributions.horizons]
    reference = found.reference.set_index("feature")["rank"] if len(found.reference) else None
    table = Table(
        "rank", "feature", *horizons, "then",
        title=f"{found.registered} version {found.version}: {attributions.method} SHAP on "
        f"{attributions.values.shape[0]} bars, {found.start[:10]} to {found.end[:10]}",
        caption="mean |SHAP| per horizon (return units); then = rank at registration",
    )  # fmt: skip
    for row in attributions.importance().head(top).to_dict(orient="records"):
        then = "-" if reference is None else str(reference.get(row["feature"], "-"))
        table.add_row(
            str(row["rank"]),
            row["feature"],
            *(f"{row[f'mean_abs_{h}']:.2e}" for h in horizons),
            then,
        )
    console.print(table)
    summary = found.to_dict(top)
    agreement = summary.get("agreement_with_reference")
    if agreement:
        console.print(
            "Agreement with the ranking at registration: Spearman "
            + ("-" if agreement["spearman"] is None else f"{agreement['spearman']:.2f}")
            + ", "
            f"{agreement['top_overlap']:.0%} of its top {agreement['top']} still in the top "
            f"{agreement['top']}"
        )
    else:
        console.print("No ranking was stored when this version was registered.")
    if plot:
        import matplotlib.pyplot as plt

        plot.parent.mkdir(parents=True, exist_ok=True)
        figure = summary_figure(attributions)
        figure.savefig(plot, dpi=110, bbox_inches="tight")
        plt.close(figure)
        console.print(f"wrote {plot}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, default=str))
        console.print(f"wrote {json_out}")


@app.command()
def tune(
    model: Annotated[str, typer.Option(help="lstm, transformer, xgboost or all")] = "xgboost",
    trials: Annotated[int, typer.Option(help="trials to add to the study")] = 20,
    workers: Annotated[int, typer.Option(help="worker processes sharing the study")] = 1,
    size: Annotated[str, typer.Option(help="network size preset the widths scale")] = "small",
    epochs: Annotated[int, typer.Option(help="max epochs per fold (neural models)")] = 5,
    window: Annotated[int, typer.Option(help="bars per input window")] = 60,
    splits: Annotated[int, typer.Option(help="inner walk-forward folds")] = 2,
    xgb_estimators: Annotated[int, typer.Option(help="max boosting rounds")] = 300,
    score: Annotated[str, typer.Option(help="objective: r2 (vs zero forecast) or ic")] = "r2",
    pruner: Annotated[str, typer.Option(help="median, hyperband or none")] = "median",
    study: Annotated[str | None, typer.Option(help="study name (default qtis-<model>)")] = None,
    timeout: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    seed: Annotated[int, typer.Option(help="sampler seed (worker k uses seed + k)")] = 7,
    json_out: Annotated[Path | None, typer.Option(help="also write the results as JSON")] = None,
) -> None:
    """Optuna search on the history before the reported test folds; studies live in Postgres
    and `qtis train` starts from their best trial."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from training.runner import FAMILIES
    from training.tuning import TuneConfig
    from training.tuning import tune as run_tune

    families = FAMILIES if model == "all" else tuple(m.strip() for m in model.split(","))
    try:
        shared = {
            "trials": trials, "workers": workers, "size": size, "epochs": epochs,
            "window": window, "splits": splits, "xgb_estimators": xgb_estimators, "score": score,
            "pruner": pruner, "timeout": timeout, "seed": seed,
            "study": study if len(families) == 1 else None,
        }  # fmt: skip
        configs = [TuneConfig(family=family, **shared) for family in families]
        url = _ready_url()
        results = []
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            for config in configs:
                task = progress.add_task(f"{config.name} ({workers} workers)", total=trials)
                results.append(
                    run_tune(url, config, lambda n, _, t=task: progress.update(t, completed=n))
                )
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    table = Table(
        "study", "trials (this run)", "complete", "pruned", "failed", "best objective",
        "trial", "by worker", "seconds", title=f"Optuna studies (objective: mean OOS {score} "
        "over inner purged walk-forward folds before the reported test period)",
    )  # fmt: skip
    for r in results:
        table.add_row(
            r.study, f"{r.total_trials} ({r.trials_run})", str(r.complete), str(r.pruned),
            str(r.failed), f"{r.best_value:.5f}" if r.best_value is not None else "-",
            str(r.best_trial), ", ".join(f"w{w}: {n}" for w, n in r.by_worker.items()),
            f"{r.seconds:.1f}",
        )  # fmt: skip
    console.print(table)
    for r in results:
        console.print(f"{r.study} best: {r.best_params}")
    console.print("dashboard: qtis optuna dashboard; `qtis train` now starts from these params")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=2, default=str))
        console.print(f"wrote {json_out}")


optuna_app = typer.Typer(help="Optuna studies on the QTIS database.", no_args_is_help=True)
app.add_typer(optuna_app, name="optuna")


@optuna_app.command("dashboard")
def optuna_dashboard(
    port: Annotated[int, typer.Option(help="Port for the dashboard")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Open optuna-dashboard on the project's study storage."""
    from training.tuning import storage_url

    uri = storage_url(_ready_url())
    console.print(f"Optuna dashboard on http://{host}:{port} (storage {redact(uri)}); Ctrl-C stops")
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    cmd = [str(dashboard), uri, "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd))


mlflow_app = typer.Typer(help="MLflow on the QTIS database.", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")


@mlflow_app.command("ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the project's tracking store (runs, metrics, registered models)."""
    from training.tracking import tracking_uri

    uri = tracking_uri(_ready_url())
    console.print(f"MLflow UI on http://{host}:{port} (store {redact(uri)}); Ctrl-C to stop")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def demo(
    synthetic: Annotated[
        int | None,
        typer.Option(
            "--synthetic",
            metavar="N",
            help="run on a synthetic universe of N symbols instead of the bundled sample (in"
            " its own QTIS_HOME, <home>/synthetic-N)",
        ),
    ] = None,
) -> None:
    """Run the pipeline on the bundled sample through Dagster and print where to look."""
    from orchestration.demo import run_demo

    run_demo(console, synthetic)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the Dagster webserver")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (webserver + daemon) on this machine."""
    from orchestration.instance import dagster_home

    home = dagster_home(get_settings())
    _ready_url()
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C to stop")
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "orchestration.definitions",
        "-h",
        host,
        "-p",
        str(port),
    ]
    raise typer.Exit(subprocess.call(cmd, env=os.environ | {"DAGSTER_HOME": str(home)}))


if __name__ == "__main__":
    app()
