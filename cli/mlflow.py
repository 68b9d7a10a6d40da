"""``qtis mlflow``: the MLflow UI on the project's tracking store, and MLflow's tracking server
on the QTIS database for more than one machine."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from cli.common import console, fail, ready_url
from core.secrets import redact
from training.settings import TrackingServerSettings, TrackingSettings
from training.tracking_server import (
    artifacts_destination,
    backend_store,
    check_exposure,
    is_server,
    server_command,
)
from warehouse.db import split_password

mlflow_app = typer.Typer(help="MLflow on the QTIS database.", no_args_is_help=True)


@mlflow_app.command("ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the project's tracking store (runs, metrics, registered models)."""
    tracking = TrackingSettings()
    if is_server(tracking.tracking_uri):
        raise fail(f"QTIS_MLFLOW_TRACKING_URI is the tracking server {tracking.tracking_uri}: "
                   "its UI is at that address")  # fmt: skip
    uri = backend_store(ready_url(), tracking)
    console.print(f"MLflow UI on http://{host}:{port} (store {redact(uri)}); Ctrl-C to stop")
    uri, password = split_password(uri)  # the password goes by the environment, not argv
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd, env=os.environ | password))


@mlflow_app.command("server")
def mlflow_server(
    port: Annotated[int | None, typer.Option(help="Port [QTIS_MLFLOW_SERVER_PORT]")] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind [QTIS_MLFLOW_SERVER_HOST]")
    ] = None,
    artifacts_to: Annotated[
        str | None,
        typer.Option(
            "--artifacts-destination",
            help="Directory or object-store URI for artifacts [QTIS_MLFLOW_ARTIFACTS_DESTINATION]",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [QTIS_MLFLOW_SERVER_WORKERS]")
    ] = None,
    open_: Annotated[
        bool,
        typer.Option("--open", help="Allow a non-loopback --host [QTIS_MLFLOW_SERVER_OPEN]"),
    ] = False,
) -> None:
    """Run MLflow's tracking server on the QTIS database, proxying artifacts to its destination;
    clients set QTIS_MLFLOW_TRACKING_URI=http://HOST:PORT. Binds loopback unless told."""
    given = {"server_port": port, "server_host": host, "artifacts_destination": artifacts_to,
             "server_workers": workers, "server_open": open_ or None}  # fmt: skip
    server = TrackingServerSettings(**{k: v for k, v in given.items() if v is not None})
    check_exposure(server)
    tracking = TrackingSettings()
    store = backend_store(ready_url(), tracking)
    destination = artifacts_destination(server, tracking.home)
    cmd, env = server_command(store, destination, server, os.environ)
    console.print(
        f"MLflow tracking server on http://{server.server_host}:{server.server_port} "
        f"(store {redact(store)}, artifacts {destination}); "
        f"clients: QTIS_MLFLOW_TRACKING_URI=http://{server.server_host}:{server.server_port}"
    )
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)  # one process: signals reach MLflow directly
