"""``qtis mlflow server``: MLflow's tracking server on the QTIS database, artifacts proxied to
its own destination. Training, registration, promotion and serving run unchanged with
``QTIS_MLFLOW_TRACKING_URI=http://...``, and every file they write lands where the server keeps
artifacts, none in the client's home.

The server is the real ``qtis mlflow server`` process on a free loopback port over the test
session's Postgres."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from mlflow.tracking import MlflowClient

from core.errors import ConfigError
from registry.aliases import force
from serving.predictor import Predictor
from serving.probe import serving_probe
from serving.schemas import PredictRequest
from serving.settings import ServingSettings
from tests.support.cli import qtis, start_qtis, stop_group
from tests.support.promotion import relaxed
from tests.support.service import free_port
from training.artifacts import digest
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from training.tracking import configure
from warehouse.db import with_database

SERVER_START_S = 180  # bounded: importing MLflow twice on a loaded 2-core machine


def _wait_answering(process: subprocess.Popen, base: str, log: Path) -> None:
    """Until the server answers a search (it reached its database), or fail with its log."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"qtis mlflow server exited {process.returncode}:\n{log.read_text()}")
        try:
            search = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
            if httpx.get(search, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"qtis mlflow server not answering in {SERVER_START_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(built, tmp_path_factory) -> Iterator[tuple[str, Path, str]]:
    """(base URL, artifacts destination, MLflow database URL) of a running server."""
    url, _ = built
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts, log, port = root / "artifacts", root / "server.log", free_port()
    base = f"http://127.0.0.1:{port}"
    database = f"mlflow_{uuid.uuid4().hex[:8]}"
    env = {
        "QTIS_DATABASE_URL": url,
        "QTIS_HOME": str(root / "server-home"),
        "QTIS_MLFLOW_DATABASE": database,
        # a .env shared with the clients names the server itself: the server keeps to the database
        "QTIS_MLFLOW_TRACKING_URI": base,
        "QTIS_MLFLOW_SERVER_WORKERS": "1",
    }
    args = ["mlflow", "server", "--port", str(port), "--artifacts-destination", str(artifacts)]
    process = start_qtis(args, env, log)
    try:
        _wait_answering(process, base, log)
        yield base, artifacts, with_database(url, database)
    finally:
        stop_group(process)


@pytest.mark.slow  # a server process, and a model trained through it
def test_train_register_promote_and_serve_through_the_server(server, built, tmp_path, monkeypatch):
    base, artifacts, store = server
    url, _ = built
    home = tmp_path / "client-home"
    for key, value in {
        "QTIS_MLFLOW_TRACKING_URI": base,
        "QTIS_HOME": str(home),
        "QTIS_DATABASE_URL": url,
    }.items():
        monkeypatch.setenv(key, value)
    tracking = TrackingSettings()
    config = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=30, explain_samples=50)
    run = run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)
    assert str(run.registered["xgboost"]["version"]) == "1"
    probe = serving_probe(url, tracking=tracking)
    force(url, "qtis-xgboost", "1", "served through the tracking server", probe, relaxed(),
          tracking=tracking)  # fmt: skip
    predictor = Predictor(url, ServingSettings(), tracking=tracking)  # as the service loads
    try:
        assert (predictor.champion.name, predictor.champion.version) == ("qtis-xgboost", "1")
        answer = predictor.predict(PredictRequest(symbols=["IBM"]))
        assert np.isfinite(answer.predictions).all() and answer.version == "1"
    finally:
        predictor.close()
    # the runs and the registry are in the server's database beside the warehouse
    with psycopg.connect(store) as conn:
        names = conn.execute("select name from registered_models").fetchall()
    assert names == [("qtis-xgboost",)]
    # the files are in the server's artifact destination, and they are the ones registered
    client = MlflowClient(base)
    assert client.get_experiment_by_name("qtis").artifact_location.startswith("mlflow-artifacts:")
    stored = [p for p in artifacts.rglob("*") if p.is_file()]
    assert {"MLmodel", "oof_predictions.parquet", "shap_summary.png"} <= {p.name for p in stored}
    (mlmodel,) = [p for p in stored if p.name == "MLmodel"]
    registered = client.get_model_version("qtis-xgboost", "1").tags["artifact_sha256"]
    assert digest(mlmodel.parent) == registered
    # and none in the client's home
    written = [p.relative_to(home) for p in home.rglob("*") if p.is_file()]
    assert not {p.name for p in written} & {p.name for p in stored}, written


@pytest.mark.slow  # the server
def test_an_experiment_keeping_files_on_one_machine_is_refused(
    server, built, tmp_path, monkeypatch
):
    """An experiment made before the server (artifacts at a file: path) would leave new models
    on the machine that trained them, out of the other machines' reach."""
    base, _, _ = server
    url, _ = built
    local = (tmp_path / "mlruns").as_uri()
    MlflowClient(base).create_experiment("files-here", artifact_location=local)
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", base)
    monkeypatch.setenv("QTIS_MLFLOW_EXPERIMENT", "files-here")
    with pytest.raises(ConfigError, match="QTIS_MLFLOW_EXPERIMENT"):
        configure(url, TrackingSettings())


def test_the_server_binds_loopback_unless_told(tmp_path):
    env = {"QTIS_HOME": str(tmp_path / ".qtis")}
    done = qtis("mlflow", "server", "--host", "0.0.0.0", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "0.0.0.0" in done.stderr and "QTIS_MLFLOW_SERVER_OPEN" in done.stderr


def test_the_ui_of_a_tracking_server_is_the_server(tmp_path):
    env = {"QTIS_HOME": str(tmp_path / ".qtis"), "QTIS_MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}
    done = qtis("mlflow", "ui", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "its UI is at that address" in " ".join(done.stderr.split())
