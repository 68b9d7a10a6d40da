"""MLflow on Postgres: runs carry params, metrics and lineage; registered models load back and
predict exactly what the in-memory model predicts."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest

from tests.support.cli import qtis
from tests.support.db import fresh_database
from training.explain import explain_registered, load_ranking
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from training.tracking import spec_hash
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # trains, registers and explains through the CLI


def test_runs_are_logged_and_models_load_back(built, pg_server, tmp_path, monkeypatch):
    url, _ = built
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    config = TrainConfig(
        models=("lstm", "xgboost"),
        size="tiny",
        epochs=1,
        splits=2,
        window=20,
        xgb_estimators=30,
        explain_samples=50,
    )
    tracking = TrackingSettings()
    run = run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)
    assert set(run.registered) == {"lstm", "xgboost"}
    for family, name in (("lstm", "qtis-lstm"), ("xgboost", "qtis-xgboost")):
        info = run.registered[family]
        assert info["registered"] == name and str(info["version"]) == "1"
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
        example = info["example"]
        in_memory = (
            run.final_models[family].predict_windows(example)
            if example.ndim == 3
            else run.final_models[family].predict_features(example)
        )
        np.testing.assert_array_equal(np.asarray(loaded.predict(example)), in_memory)
        assert loaded.metadata.signature is not None
        # the pyfunc is logged as code over portable files, and the version carries their hash
        assert loaded.metadata.flavors["python_function"]["loader_module"].endswith("code_model")
        version = mlflow.tracking.MlflowClient().get_model_version(name, "1")
        assert len(version.tags["artifact_sha256"]) == 64
        logged = mlflow.get_run(info["run_id"]).data
        assert logged.tags["feature_spec_sha256"] == spec_hash()
        assert logged.tags["git_commit"] and logged.tags["data_start"].startswith("2000")
        assert logged.params["window"] == "20" and "oos_sharpe" in logged.metrics
        # the latest 15% of bars (the default holdout) are unseen, early-stopping labels too
        keys = ("trained_through", "label_end", "data_end")
        through, labels, end = (np.datetime64(logged.tags[k], "us") for k in keys)
        assert through < labels < end - np.timedelta64(365, "D")
        history = mlflow.tracking.MlflowClient().get_metric_history(info["run_id"], "fold_mse_h1")
        assert [m.step for m in history] == [0, 1]
    assert (tmp_path / ".qtis" / "mlruns").is_dir()  # artifacts under QTIS_HOME, not ./mlruns
    # SHAP explanations of each registered model: plots, table and ranking in its run, the
    # ranking also in mlops.feature_attributions for monitoring
    for family, name in (("lstm", "qtis-lstm"), ("xgboost", "qtis-xgboost")):
        info = run.registered[family]
        logged = {
            a.path
            for a in mlflow.tracking.MlflowClient().list_artifacts(info["run_id"], "explanations")
        }
        assert logged == {
            f"explanations/{f}"
            for f in ("shap_summary.png", "feature_importance.png", "feature_importance.csv",
                      "feature_ranking.json")
        }  # fmt: skip
        stored = load_ranking(url, name, "1")
        assert list(stored["rank"]) == list(range(1, len(stored) + 1)) == list(range(1, 57))
        assert stored["samples"].iloc[0] == 50 and stored["mean_abs"].is_monotonic_decreasing
        assert info["top_features"] == list(stored["feature"][:5])
    out = tmp_path / "explain.json"
    env = {"QTIS_DATABASE_URL": url, "QTIS_HOME": str(tmp_path / ".qtis")}
    done = qtis("explain", "--model", "xgboost", "--samples", "50", "--json-out", str(out), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank at registration" in done.stdout.replace("\n", " ") and "Spearman" in done.stdout
    summary = json.loads(out.read_text())
    assert summary["registered"] == "qtis-xgboost" and summary["samples"] == 50
    assert summary["end"].startswith("2013") and summary["method"] == "tree"
    assert -1 <= summary["agreement_with_reference"]["spearman"] <= 1
    # the CLI turns these into exit code 2 with the message (fail() in cli.common)
    with pytest.raises(ValueError, match="cannot explain 'ensemble'"):
        explain_registered(url, "ensemble", tracking=tracking)
    with pytest.raises(ValueError, match="qtis-xgboost has no version 99"):
        explain_registered(url, "xgboost", "99", tracking=tracking)
