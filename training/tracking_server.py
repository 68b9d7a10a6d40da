"""MLflow's tracking server on the QTIS database (``qtis mlflow server``), for more than one
machine: runs and the registry in the ``mlflow`` database beside the warehouse, artifacts
proxied by the server to its destination (a directory, or an object store), so clients need
only ``QTIS_MLFLOW_TRACKING_URI=http://host:port`` and no access to the files themselves.

The server has no login: it binds loopback unless a setting says otherwise. Light to import (no
MLflow): the CLI builds the command before anything slow loads.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from core.errors import ConfigError
from core.net import is_loopback
from training.settings import TrackingServerSettings, TrackingSettings
from warehouse.db import companion_database, split_password

SERVER_SCHEMES = frozenset({"http", "https"})
# MLflow's environment for the server unless the caller's says otherwise: no job runner (MLflow's
# GenAI jobs, which QTIS does not use; measured here it is 8 more processes, 1.9 GB RSS in all
# instead of 0.8 GB, and twice the start-up time)
SERVER_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# what MLflow needs installed to proxy to an object store, by URI scheme
STORE_CLIENTS = {
    "s3": ("boto3", "boto3"),
    "gs": ("google.cloud.storage", "google-cloud-storage"),
    "wasbs": ("azure.storage.blob", "azure-storage-blob"),
}


class OpenTrackingServer(ConfigError):
    """The server asked to bind an interface others reach, without saying so explicitly."""


def is_server(uri: str | None) -> bool:
    """Whether a tracking URI names a tracking server (and not a database)."""
    return bool(uri) and urlsplit(uri).scheme in SERVER_SCHEMES


def is_local(location: str) -> bool:
    """Whether an artifact location is a path on the machine that uses it."""
    return urlsplit(location).scheme in ("", "file")


def backend_store(url: str, settings: TrackingSettings) -> str:
    """The database the server keeps runs and the registry in: QTIS_MLFLOW_TRACKING_URI when it
    names a database, else the companion database. A tracking URI naming a server (a ``.env``
    shared with the clients) is the server itself, not its store."""
    if settings.tracking_uri and not is_server(settings.tracking_uri):
        return settings.tracking_uri
    return companion_database(url, settings.database, "MLflow", "QTIS_MLFLOW_TRACKING_URI")


def artifacts_destination(server: TrackingServerSettings, home: Path) -> str:
    """Where the server keeps artifacts: an object-store URI as given (its client library
    checked), or a directory (``QTIS_HOME/mlartifacts`` by default), made and made absolute."""
    where = server.artifacts_destination or str(home / "mlartifacts")
    scheme = urlsplit(where).scheme
    if scheme in STORE_CLIENTS:
        module, package = STORE_CLIENTS[scheme]
        if not _installed(module):
            raise ConfigError(
                f"artifacts destination {where} needs the {package} package: pip install {package}"
            )
        return where
    if scheme not in ("", "file"):
        return where  # another store MLflow knows (hdfs, ftp, ...): MLflow checks it
    path = Path(url2pathname(urlsplit(where).path) if scheme else where).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _installed(module: str) -> bool:
    """Whether ``module`` (dotted) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_exposure(server: TrackingServerSettings) -> None:
    """Refuse a non-loopback interface unless QTIS_MLFLOW_SERVER_OPEN says so: whoever reaches
    the server may register a model, and serving runs the code a model carries."""
    if is_loopback(server.server_host) or server.server_open:
        return
    raise OpenTrackingServer(
        f"refusing to run the MLflow tracking server on {server.server_host}: it has no login, "
        "so anyone who reaches it may read, register and replace models; bind 127.0.0.1 "
        "(QTIS_MLFLOW_SERVER_HOST) behind a tunnel or an authenticating proxy, or set "
        "QTIS_MLFLOW_SERVER_OPEN=1 (--open) if the network is trusted"
    )


def server_command(
    store: str, destination: str, server: TrackingServerSettings, environ: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """``mlflow server`` over ``store`` proxying artifacts to ``destination``, and its
    environment: ``environ`` over :data:`SERVER_DEFAULTS`, with the database password (never on
    the command line: ``ps`` shows it)."""
    bare, password = split_password(store)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", bare]
    cmd += ["--serve-artifacts", "--artifacts-destination", destination]
    cmd += ["--host", server.server_host, "--port", str(server.server_port)]
    cmd += ["--workers", str(server.server_workers)]
    if server.allowed_hosts:
        cmd += ["--allowed-hosts", server.allowed_hosts]
    return cmd, SERVER_DEFAULTS | dict(environ) | password
