"""The root ``qtis`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from warehouse import embedded
from warehouse.db import database_url, redact
from warehouse.providers import SOURCES, DataSourceError, make_provider
from warehouse.schema import bars_storage, migrate
from warehouse.settings import get_settings

app = typer.Typer(help="QTIS: Quantitative Trading Intelligence System.", no_args_is_help=True)
db_app = typer.Typer(
    help="The Postgres warehouse (embedded unless QTIS_DATABASE_URL is set).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
features_app = typer.Typer(
    help="The feature store: dbt models over market.bars, GARCH, labels.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _ready_url() -> str:
    """Database URL with the server started and the schema migrated."""
    try:
        url = database_url()
        migrate(url)
    except ConnectionError as exc:
        raise fail(str(exc)) from exc
    return url


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
) -> None:
    """Walk-forward training and out-of-sample evaluation next to the baselines."""
    from orchestration.train_report import print_evaluation
    from training.runner import FAMILIES, TrainConfig, run_training

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
    )
    try:
        config.factories()
        url = _ready_url()
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
        )
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        registered = {
            f: {k: v for k, v in info.items() if k != "example"}
            for f, info in result.registered.items()
        }
        payload = report | {"registered": registered}
        json_out.write_text(json.dumps(payload, indent=2, default=str))
        console.print(f"wrote {json_out}")


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
def demo() -> None:
    """Run the pipeline on the bundled sample through Dagster and print where to look."""
    from orchestration.demo import run_demo

    run_demo(console)


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
