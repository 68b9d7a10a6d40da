"""Lightning DDP on CPU: `qtis train --devices 2 --strategy ddp` runs two gloo processes, and
`qtis train --num-nodes 2 --node-rank N` two node processes (as on two machines, here on
loopback); either way the result matches one process, and only global rank 0 prints, logs to
MLflow and writes its report."""

from __future__ import annotations

import json

import mlflow
import pytest

from tests.support.cli import qtis, qtis_together
from tests.support.db import fresh_database
from tests.support.service import free_port
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # DDP in worker processes

COMMON = [
    "train", "--model", "transformer", "--size", "tiny", "--epochs", "2", "--splits", "2",
    "--window", "20", "--symbols", "IBM,MSFT", "--strategy", "ddp", "--explain-samples", "0",
    "--param", "transformer.dropout=0",  # dropout draws differ per process by design
]  # fmt: skip
METRICS = ("mse_h1", "mse_h20", "ic_h1", "ic_h20")


@pytest.fixture(scope="module")
def base_env(built, pg_server) -> dict[str, str]:
    url, _ = built
    return {
        "QTIS_DATABASE_URL": url,
        "QTIS_OPTUNA_STORAGE": sqlalchemy_url(fresh_database(pg_server)),
    }


@pytest.fixture(scope="module")
def one_process(base_env, tmp_path_factory) -> list[dict]:
    """The transformer's walk-forward folds, trained in one process (nothing tracked)."""
    tmp = tmp_path_factory.mktemp("one")
    env = base_env | {"QTIS_HOME": str(tmp / ".qtis")}
    out = tmp / "one.json"
    done = qtis(*COMMON, "--devices", "1", "--no-track", "--json-out", str(out), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    folds = json.loads(out.read_text())["models"]["transformer"]["folds"]
    assert [f["processes"] for f in folds] == [1, 1]
    return folds


@pytest.fixture
def tracking(pg_server) -> str:
    """A fresh MLflow store for one test."""
    return sqlalchemy_url(fresh_database(pg_server))


def assert_same_folds(one: list[dict], many: list[dict], processes: int) -> None:
    assert [f["processes"] for f in many] == [processes] * len(one)
    for a, b in zip(one, many, strict=True):
        for key in METRICS:
            assert abs(a[key] - b[key]) <= 1e-4 * max(1.0, abs(a[key])), (key, a[key], b[key])


def assert_one_tracked_run(tracking: str) -> None:
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert list(runs["tags.mlflow.runName"]) == ["transformer"]  # one run, from rank 0
    versions = mlflow.tracking.MlflowClient(tracking, registry_uri=tracking).search_model_versions(
        "name='qtis-transformer'"
    )
    assert [str(v.version) for v in versions] == ["1"]


def test_ddp_matches_one_process_and_only_rank_zero_logs(base_env, one_process, tracking, tmp_path):
    env = base_env | {"QTIS_HOME": str(tmp_path / ".qtis"), "QTIS_MLFLOW_TRACKING_URI": tracking}
    out = tmp_path / "ddp2.json"
    done = qtis(*COMMON, "--devices", "2", "--track", "--json-out", str(out), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Out of sample") == 1  # rank 1 prints nothing
    assert_same_folds(one_process, json.loads(out.read_text())["models"]["transformer"]["folds"], 2)
    assert_one_tracked_run(tracking)


def test_two_nodes_match_one_process_and_only_node_zero_logs(
    base_env, one_process, tracking, tmp_path
):
    """Two `qtis train` node processes, each with its own QTIS_HOME (as on two machines), meet
    at MASTER_ADDR:MASTER_PORT; each runs the same command but for --node-rank."""
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    runs = []
    for node in (0, 1):
        env = base_env | rendezvous | {
            "QTIS_HOME": str(tmp_path / f"node{node}" / ".qtis"),
            "QTIS_MLFLOW_TRACKING_URI": tracking,
        }  # fmt: skip
        args = [*COMMON, "--devices", "1", "--num-nodes", "2", "--node-rank", str(node),
                "--track", "--json-out", str(tmp_path / f"node{node}.json")]  # fmt: skip
        runs.append((args, env))
    node0, node1 = qtis_together(*runs)
    assert node0.returncode == 0, node0.stderr[-3000:]
    assert node1.returncode == 0, node1.stderr[-3000:]
    assert node0.stdout.count("Out of sample") == 1 and "Out of sample" not in node1.stdout
    assert not (tmp_path / "node1.json").exists()  # only global rank 0 reports
    report = json.loads((tmp_path / "node0.json").read_text())
    assert_same_folds(one_process, report["models"]["transformer"]["folds"], 2)
    assert_one_tracked_run(tracking)


def test_more_nodes_need_a_rendezvous(base_env, tmp_path):
    """Without MASTER_ADDR and MASTER_PORT a node could never find the others: refused at once."""
    env = base_env | {"QTIS_HOME": str(tmp_path / ".qtis"), "MASTER_ADDR": "", "MASTER_PORT": ""}
    done = qtis(*COMMON, "--num-nodes", "2", "--node-rank", "1", "--no-track", env=env)
    assert done.returncode == 2
    assert "MASTER_ADDR" in done.stderr and "MASTER_PORT" in done.stderr
