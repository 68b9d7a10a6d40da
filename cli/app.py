"""The root ``qtis`` command line: the command groups and top-level commands, in the order the
help lists them, and ``qtis demo`` and ``qtis ui``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from cli.common import console, fail, ready_url
from cli.config import config_app
from cli.db import db_app
from cli.errors import QtisGroup
from cli.features import features_app
from cli.mlflow import mlflow_app
from cli.models import models_app, serve
from cli.monitor import monitor_app
from cli.optuna import optuna_app
from cli.pipeline import ensemble, explain, ingest, train, tune, update
from cli.series import series_app
from cli.trade import trade_app
from orchestration.instance import dagster_home, storage
from warehouse.settings import get_settings

app = typer.Typer(
    help="QTIS: Quantitative Trading Intelligence System.", no_args_is_help=True, cls=QtisGroup
)
app.add_typer(db_app, name="db")
app.add_typer(features_app, name="features")
app.add_typer(series_app, name="series")
app.add_typer(models_app, name="models")
app.add_typer(trade_app, name="trade")
app.add_typer(monitor_app, name="monitor")
app.add_typer(config_app, name="config")
for command in (serve, ingest, train, ensemble, update, explain, tune):
    app.command()(command)
app.add_typer(optuna_app, name="optuna")
app.add_typer(mlflow_app, name="mlflow")


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
    # deferred: demo.run pulls dagster, dbt, torch and lightning (~17 s measured) and would load on
    # every qtis command
    from demo.run import run_demo

    run_demo(console, synthetic)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the Dagster webserver")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (webserver + daemon) on this machine: runs in local files on the
    embedded database, in Postgres with a run queue when QTIS_DATABASE_URL is set."""
    ready_url()
    try:
        home = dagster_home(get_settings())
    except ConnectionError as exc:  # no right to create the database `dagster`
        raise fail(str(exc)) from exc
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C to stop")
    console.print(f"runs are stored {storage(home)}")
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
