"""``qtis optuna``: optuna-dashboard on the project's study storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, ready_url
from core.secrets import redact
from training.settings import TuningSettings
from warehouse.db import split_password

optuna_app = typer.Typer(help="Optuna studies on the QTIS database.", no_args_is_help=True)


@optuna_app.command("dashboard")
def optuna_dashboard(
    port: Annotated[int, typer.Option(help="Port for the dashboard")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Open optuna-dashboard on the project's study storage."""
    # deferred: training.studies pulls optuna and training (torch and lightning, ~7 s measured)
    # and would load on every qtis command
    from training.studies import storage

    # opening the storage creates Optuna's tables: the dashboard fails on a database without
    uri = storage(ready_url(), TuningSettings()).url
    console.print(f"Optuna dashboard on http://{host}:{port} (storage {redact(uri)}); Ctrl-C stops")
    uri, password = split_password(uri)  # the password goes by the environment, not argv
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    cmd = [str(dashboard), uri, "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=os.environ | password))
