"""Lightning DDP on CPU: `qtis train --devices 2 --strategy ddp` runs two gloo processes whose
result matches one process, and only rank 0 logs to MLflow."""

from __future__ import annotations

import json

import mlflow
import pytest

from tests.support.cli import qtis
from tests.support.db import fresh_database
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # DDP in worker processes


def test_ddp_matches_one_process_and_only_rank_zero_logs(built, pg_server, tmp_path):
    url, _ = built
    tracking = sqlalchemy_url(fresh_database(pg_server))
    env = {
        "QTIS_DATABASE_URL": url,
        "QTIS_HOME": str(tmp_path / ".qtis"),
        "QTIS_MLFLOW_TRACKING_URI": tracking,
        "QTIS_OPTUNA_STORAGE": sqlalchemy_url(fresh_database(pg_server)),
    }
    common = [
        "train", "--model", "transformer", "--size", "tiny", "--epochs", "2", "--splits", "2",
        "--window", "20", "--symbols", "IBM,MSFT", "--strategy", "ddp", "--explain-samples", "0",
        "--param", "transformer.dropout=0",  # dropout draws differ per process by design
    ]  # fmt: skip
    reports = {}
    for devices, track in (("1", "--no-track"), ("2", "--track")):
        out = tmp_path / f"ddp{devices}.json"
        done = qtis(*common, "--devices", devices, track, "--json-out", str(out), env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("Out of sample") == 1  # rank 1 prints nothing
        reports[devices] = json.loads(out.read_text())
    one, two = (reports[d]["models"]["transformer"]["folds"] for d in ("1", "2"))
    assert [f["processes"] for f in one] == [1, 1] and [f["processes"] for f in two] == [2, 2]
    for a, b in zip(one, two, strict=True):
        for key in ("mse_h1", "mse_h20", "ic_h1", "ic_h20"):
            assert abs(a[key] - b[key]) <= 1e-4 * max(1.0, abs(a[key])), (key, a[key], b[key])
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert list(runs["tags.mlflow.runName"]) == ["transformer"]  # one run, from rank 0
    versions = mlflow.tracking.MlflowClient(tracking, registry_uri=tracking).search_model_versions(
        "name='qtis-transformer'"
    )
    assert [str(v.version) for v in versions] == ["1"]
