"""The tracking server's command: where its artifacts go, what it binds, and that the
database password stays off its command line. The server itself runs in
tests/cli/test_mlflow_server.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from training.settings import TrackingServerSettings
from training.tracking_server import (
    OpenTrackingServer,
    artifacts_destination,
    check_exposure,
    is_server,
    server_command,
)

STORE = "postgresql+psycopg://qtis:s3cret@db.internal:5432/mlflow"


def test_a_directory_destination_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = artifacts_destination(TrackingServerSettings(), Path(".qtis"))
    assert default == str(tmp_path / ".qtis" / "mlartifacts") and Path(default).is_dir()
    given = TrackingServerSettings(artifacts_destination=(tmp_path / "a b").as_uri())
    assert artifacts_destination(given, Path(".qtis")) == str(tmp_path / "a b")
    relative = TrackingServerSettings(artifacts_destination="shared/artifacts")
    assert artifacts_destination(relative, Path(".qtis")) == str(tmp_path / "shared/artifacts")


def test_an_object_store_destination_needs_its_client_library(tmp_path):
    """``google`` is a namespace other packages fill (protobuf): the storage client is what
    MLflow needs for gs://."""
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("google-cloud-storage is installed here")
    where = TrackingServerSettings(artifacts_destination="gs://bucket/qtis")
    with pytest.raises(ConfigError, match="pip install google-cloud-storage"):
        artifacts_destination(where, tmp_path)
    hdfs = TrackingServerSettings(artifacts_destination="hdfs://namenode/qtis")
    assert artifacts_destination(hdfs, tmp_path) == "hdfs://namenode/qtis"  # MLflow checks it


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "mlflow.example.com"])
def test_only_loopback_binds_without_an_explicit_opt_in(host):
    with pytest.raises(OpenTrackingServer, match="QTIS_MLFLOW_SERVER_OPEN=1"):
        check_exposure(TrackingServerSettings(server_host=host))
    check_exposure(TrackingServerSettings(server_host=host, server_open=True))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost"])
def test_loopback_binds(host):
    check_exposure(TrackingServerSettings(server_host=host))


def test_the_password_goes_by_the_environment():
    settings = TrackingServerSettings(server_port=5055, allowed_hosts="mlflow.example.com")
    cmd, env = server_command(STORE, "s3://bucket/qtis", settings, {"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "PGPASSWORD": "s3cret",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    assert not [a for a in cmd if "s3cret" in a]
    assert cmd[cmd.index("--backend-store-uri") + 1] == (
        "postgresql+psycopg://qtis@db.internal:5432/mlflow"
    )
    assert "--serve-artifacts" in cmd and cmd[cmd.index("--artifacts-destination") + 1] == (
        "s3://bucket/qtis"
    )
    assert cmd[cmd.index("--host") + 1 :][:4] == ["127.0.0.1", "--port", "5055", "--workers"]
    assert cmd[-2:] == ["--allowed-hosts", "mlflow.example.com"]


def test_the_caller_may_turn_mlflows_job_runner_back_on():
    mine = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    _, env = server_command(STORE, "/srv/artifacts", TrackingServerSettings(), mine)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def test_a_tracking_uri_names_a_server_or_a_database():
    assert is_server("http://127.0.0.1:5000") and is_server("https://mlflow.example.com")
    assert not is_server(STORE) and not is_server(None) and not is_server("")
