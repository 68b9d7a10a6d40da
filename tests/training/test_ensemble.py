"""qtis-ensemble: stacked on out-of-fold predictions only, scored next to its members, the
other combiners and the baselines, registered as one pyfunc model that predicts what the
in-memory combination predicts, with its weights over time in MLflow and mlops."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from quant.splits import PurgedWalkForward
from tests.support.db import fresh_database
from training.data import TrainingData
from training.ensemble import evaluate_ensemble, run_ensemble
from training.ensemble_series import load_series
from training.evaluate import evaluate
from training.families import SEED_FAMILIES
from training.models.tabular import ZeroModel
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from warehouse.db import sqlalchemy_url

pytestmark = pytest.mark.slow  # trains and registers an ensemble


def _synthetic(n_times: int = 600, symbols: int = 3, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    n = n_times * symbols
    ts = np.tile(np.arange(n_times).astype("datetime64[D]").astype("datetime64[us]"), symbols)
    returns = rng.normal(0, 0.01, size=(n, 1)).astype(np.float32)
    return TrainingData(
        symbols=np.repeat([f"S{i}" for i in range(symbols)], n_times),
        ts=ts,
        features=rng.lognormal(size=(n, 1)).astype(np.float32),
        returns=returns,
        volatility=np.abs(returns),
        feature_names=("hv_20",),
        horizons=(1,),
    )


def test_the_stack_on_a_fold_never_sees_that_fold():
    """Member 'oracle' is noise on the early folds and the truth on the last: a stack fitted on
    the last fold would weight it; the nested one cannot know."""
    data = _synthetic()
    splitter = PurgedWalkForward(n_splits=3, horizon=1, first_test=0.4)
    baselines = evaluate(data, {"zero": ZeroModel}, splitter, window=1)
    rows = np.concatenate(baselines.fold_rows)
    folds = np.concatenate([np.full(len(r), k) for k, r in enumerate(baselines.fold_rows)])
    rng = np.random.default_rng(1)
    truth = data.returns[rows, 0]
    useful = truth + rng.normal(0, 0.01, len(rows))
    oracle = np.where(folds == 2, truth, rng.normal(0, 0.01, len(rows)))

    def frame(pred):
        return pd.DataFrame(
            {"symbol": data.symbols[rows], "ts": data.ts[rows], "fold": folds, "pred_h1": pred}
        )

    result = evaluate_ensemble(data, {"useful": frame(useful), "oracle": frame(oracle)}, baselines)
    last = result.fold_weights[2]["pooled"]["h1"]
    assert result.fold_weights[0]["fit_rows"] == 0  # fold 0: equal weights, nothing to fit on
    assert last["oracle"] < 0.05 and last["useful"] > 0.2
    assert result.final.weights()["pooled"]["h1"]["oracle"] > 0.1  # fitted on all folds: leaks
    ensemble = result.evaluation.results["ensemble"]
    last_rows = folds == 2
    error = np.mean((ensemble.predictions[last_rows, 0] - truth[last_rows]) ** 2)
    assert error > 0.3 * np.mean(truth[last_rows] ** 2)


@pytest.fixture
def stores(pg_server, tmp_path, monkeypatch):
    monkeypatch.setenv("QTIS_OPTUNA_STORAGE", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))


def test_registered_ensemble_serves_like_any_model(built, stores):
    url, _ = built
    config = TrainConfig(size="tiny", epochs=1, splits=2, window=20, xgb_estimators=30,
                         explain_samples=0)  # fmt: skip
    tracking = TrackingSettings()
    run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)
    run = run_ensemble(url, tracking=tracking)
    report = run.result.evaluation.to_dict()
    combiners = {"ensemble", "ensemble_vote", "ensemble_select"}
    assert set(report["models"]) == {*SEED_FAMILIES, *combiners, "zero", "ridge", "buy_and_hold"}
    rows = {m["test_rows"] for m in report["models"].values()}
    assert len(rows) == 1  # every model scored on the same test bars
    info = run.registered
    assert info["registered"] == "qtis-ensemble" and str(info["version"]) == "1"
    loaded = mlflow.pyfunc.load_model("models:/qtis-ensemble/1")
    example = info["example"]
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(example)), run.bundle.predict_windows(example)
    )
    assert run.bundle.versions == {"lstm": "1", "transformer": "1", "xgboost": "1"}
    tags = mlflow.get_run(info["run_id"]).data.tags
    assert tags["members"] == "lstm:1,transformer:1,xgboost:1"
    stored = load_series(url)  # the stack's weights at each out-of-sample bar, fold by fold
    assert set(stored["combiner"]) == {"stack"} and set(stored["version"]) == {"1"}
    assert stored["ts"].nunique() == len(np.unique(run.result.evaluation.data.ts[
        run.result.evaluation.results["ensemble"].rows]))  # fmt: skip

    voted = run_ensemble(url, tracking=tracking, combiner="vote", lookback=20)  # same members
    assert str(voted.registered["version"]) == "2"
    assert set(voted.result.evaluation.results) >= {"ensemble", "ensemble_stack"}
    final = voted.bundle.stack.weights()["pooled"]["h1"]  # frozen as of the members' label end
    assert sum(final[f] for f in SEED_FAMILIES) == pytest.approx(1.0) and final["intercept"] == 0.0
    loaded = mlflow.pyfunc.load_model("models:/qtis-ensemble/2")
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(example)), voted.bundle.predict_windows(example)
    )
    run_id = voted.registered["run_id"]
    assert mlflow.get_run(run_id).data.params["combiner"] == "vote"
    series = load_series(url)
    assert set(series["version"]) == {"2"} and set(series["regime"]) == {"pooled"}
    logged = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="ensemble_weight_series.csv"))  # fmt: skip
    assert len(logged) == len(series)
    history = MlflowClient().get_metric_history(run_id, "weight_h1_pooled_xgboost")
    mine = series[(series["horizon"] == 1) & (series["member"] == "xgboost")]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        list(mine["weight"])
    )
