"""``qtis mlflow``: the MLflow UI on the project's tracking store."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from cli.common import console, ready_url
from core.secrets import redact
from training.settings import TrackingSettings
from warehouse.db import split_password

mlflow_app = typer.Typer(help="MLflow on the QTIS database.", no_args_is_help=True)


@mlflow_app.command("ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the project's tracking store (runs, metrics, registered models)."""
    # deferred: training.tracking pulls mlflow, torch and lightning (~6 s measured) and would load
    # on every qtis command
    from training.tracking import tracking_uri

    uri = tracking_uri(ready_url(), TrackingSettings())
    console.print(f"MLflow UI on http://{host}:{port} (store {redact(uri)}); Ctrl-C to stop")
    uri, password = split_password(uri)  # the password goes by the environment, not argv
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=os.environ | password))
