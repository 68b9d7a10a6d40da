"""Online learning: newly labelled bars folded into a registered model, registered as the next
version pending promotion; never a bar whose labels are not known yet."""

from __future__ import annotations

import json
from datetime import UTC

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tests.support.db import fresh_database
from training.data import TrainingData, load_training_data
from training.explain import load_ranking
from training.online import NothingToUpdate, new_labelled_rows, split_in_time, update_model
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from training.tracking import load_bundle
from warehouse.db import sqlalchemy_url

SYMBOLS = ["IBM", "MSFT"]
ROUNDS, STEPS = 7, 10


@pytest.fixture(scope="module")
def trained(built, pg_server, tmp_path_factory):
    """lstm and xgboost registered as version 1 in a fresh MLflow store (per module)."""
    url, _ = built
    home = tmp_path_factory.mktemp("online") / ".qtis"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
        mp.setenv("QTIS_OPTUNA_STORAGE", sqlalchemy_url(fresh_database(pg_server)))
        mp.setenv("QTIS_HOME", str(home))
        config = TrainConfig(
            models=("lstm", "xgboost"), size="tiny", epochs=1, splits=2, window=20,
            xgb_estimators=30, explain_samples=50,
        )  # fmt: skip
        run = run_training(url, config, symbols=SYMBOLS, tracking=TrackingSettings())
        yield url, run


def _bundle(name: str, version: str):
    return load_bundle(name, version)


def _rows(data: TrainingData, keys: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    index = {(s, t): i for i, (s, t) in enumerate(zip(data.symbols, data.ts, strict=True))}
    return np.array([index[(s, t)] for s, t in zip(*keys, strict=True)], dtype=np.int64)


def _assert_labels_known(data: TrainingData, rows: np.ndarray) -> None:
    """Every label of every row finite, and its whole label window inside the data: the bar
    ``max(horizons)`` bars later is a bar of the same symbol, at or before its last bar."""
    horizon = max(data.horizons)
    assert len(rows) and np.isfinite(data.returns[rows]).all()
    ahead = rows + horizon
    assert (ahead < len(data)).all() and (data.symbols[ahead] == data.symbols[rows]).all()
    assert (data.ts[ahead] > data.ts[rows]).all()


def _synthetic(lengths: dict[str, int], horizons=(1, 2, 5, 10, 20)) -> TrainingData:
    symbols = np.concatenate([[s] * n for s, n in lengths.items()])
    ts = np.concatenate(
        [
            np.datetime64("2020-01-01", "us") + np.arange(n) * np.timedelta64(1, "D")
            for n in lengths.values()
        ]
    )
    n = len(ts)
    returns = np.full((n, len(horizons)), 0.01, dtype=np.float32)  # a label table running ahead
    return TrainingData(
        symbols=symbols, ts=ts, features=np.zeros((n, 3), dtype=np.float32), returns=returns,
        volatility=returns.copy(), feature_names=("a", "b", "c"), horizons=tuple(horizons),
    )  # fmt: skip


def test_new_rows_are_labelled_and_split_with_a_purge():
    data = _synthetic({"A": 100, "B": 80})
    data.returns[50, 4] = np.nan  # one unknown label in A
    cut = np.datetime64("2020-01-31", "us")  # day 30
    rows = new_labelled_rows(data, cut, window=5, min_history=0)
    a, b = rows[data.symbols[rows] == "A"], rows[data.symbols[rows] == "B"] - 100
    # after the cut, and at least 20 later bars of the same symbol: finite labels alone are
    # not trusted (A's last 20 and B's last 20 bars have finite labels here)
    np.testing.assert_array_equal(a, np.setdiff1d(np.arange(31, 80), [50]))
    np.testing.assert_array_equal(b, np.arange(31, 60))
    assert not len(new_labelled_rows(data, np.datetime64("2020-03-31", "us")))
    warm = new_labelled_rows(data, np.datetime64("2019-01-01", "us"), window=5, min_history=10)
    assert data.row_in_symbol[warm].min() == 14  # a full window after the warm-up
    update, held = split_in_time(data.ts, rows, holdout=0.2, purge=20)
    times = np.unique(data.ts[rows])
    gap = np.searchsorted(times, data.ts[held].min()) - np.searchsorted(
        times, data.ts[update].max()
    )
    assert gap == 21  # 20 bars purged between the last update bar and the first holdout bar
    assert len(np.unique(data.ts[held])) == np.ceil((len(times) - 20) * 0.2)
    few = rows[data.ts[rows] <= np.datetime64("2020-02-20", "us")]  # 21 bars: no room
    update, held = split_in_time(data.ts, few, holdout=0.2, purge=20)
    assert len(update) == len(few) and not len(held)
    with pytest.raises(ValueError, match="holdout"):
        split_in_time(data.ts, rows, holdout=1.0, purge=20)


@pytest.mark.slow
def test_update_folds_new_bars_into_both_families(trained):
    url, run = trained
    client = MlflowClient()
    data = load_training_data(url, SYMBOLS)
    results = {}
    for family in ("xgboost", "lstm"):
        name = f"qtis-{family}"
        before = client.get_run(run.registered[family]["run_id"]).data.tags["trained_through"]
        result = update_model(url, family, tracking=TrackingSettings(), rounds=ROUNDS, steps=STEPS)
        results[family] = result
        assert (result.registered, result.base_version, result.new_version) == (name, "1", "2")
        version = client.get_model_version(name, "2")
        assert version.tags["promotion"] == "pending" and version.tags["update_of"] == "1"
        logged = client.get_run(result.run_id).data
        assert logged.tags["promotion"] == "pending" and logged.tags["update_of"] == "1"
        assert logged.tags["model_family"] == family
        assert logged.tags["update_rows"] == str(result.rows_used)
        assert logged.tags["trained_through"] == result.trained_through_after
        # the new version has its own attribution ranking, for attribution-drift checks
        ranking = load_ranking(url, name, "2")
        assert (
            len(ranking) == len(data.feature_names) and ranking["run_id"].iloc[0] == result.run_id
        )
        assert {"holdout_base_mse_h1", "holdout_updated_mse_h1", "holdout_updated_ic_mean"} <= set(
            logged.metrics
        )
        assert logged.params["window"] == "20"  # what the next update reads

        # only bars after trained_through whose labels are all known, then a purged holdout
        assert result.trained_through_before == before
        rows, held = _rows(data, result.update_keys), _rows(data, result.holdout_keys)
        assert result.rows_used == len(rows) > 100 and result.holdout_rows == len(held) > 10
        _assert_labels_known(data, rows)
        _assert_labels_known(data, held)
        assert data.ts[rows].min() > np.datetime64(before, "us")
        assert str(data.ts[rows].max()) == result.trained_through_after
        calendar = np.unique(data.ts)
        gap = np.searchsorted(calendar, data.ts[held].min()) - np.searchsorted(
            calendar, data.ts[rows].max()
        )
        assert gap > max(data.horizons)

        # the registered version is the in-memory updated model
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/2")
        in_memory = (
            result.bundle.predict_windows(result.example)
            if family == "lstm"
            else result.bundle.predict_features(result.example)
        )
        np.testing.assert_array_equal(np.asarray(loaded.predict(result.example)), in_memory)
        for which in ("base", "updated"):
            assert result.metrics[which]["mse_h1"] > 0

    # xgboost: rounds added on top of the rounds the base model predicts with
    base, new = _bundle("qtis-xgboost", "1"), _bundle("qtis-xgboost", "2")
    used = base.model.best_iteration + 1  # the base was early-stopped: later trees unused
    assert new.model.get_booster().num_boosted_rounds() == used + ROUNDS
    assert results["xgboost"].details == {
        "rounds_before": used,
        "rounds_added": ROUNDS,
        "rounds_after": used + ROUNDS,
    }

    # lstm: weights moved, the training-time scaler and target scale did not
    base, new = _bundle("qtis-lstm", "1"), _bundle("qtis-lstm", "2")
    assert results["lstm"].details["steps"] == STEPS
    assert any(not torch.equal(base.state[k], new.state[k]) for k in base.state)
    np.testing.assert_array_equal(new.scaler.mean_, base.scaler.mean_)
    np.testing.assert_array_equal(new.scaler.scale_, base.scaler.scale_)
    np.testing.assert_array_equal(new.target_scale, base.target_scale)
    assert new.onnx is not None and new.onnx != base.onnx

    # again right away: from version 2, only the bars after what version 2 learnt
    first = results["xgboost"]
    again = update_model(url, "xgboost", tracking=TrackingSettings(), rounds=ROUNDS)
    assert (again.base_version, again.new_version) == ("2", "3")
    assert again.trained_through_before == first.trained_through_after
    rows = _rows(data, again.update_keys)
    _assert_labels_known(data, rows)
    assert data.ts[rows].min() > np.datetime64(first.trained_through_after, "us")
    assert again.details["rounds_before"] == first.details["rounds_after"]
    assert client.get_model_version("qtis-xgboost", "3").tags["update_of"] == "2"


@pytest.mark.slow
def test_update_refuses_without_new_labelled_bars(trained, monkeypatch):
    url, run = trained
    through = MlflowClient().get_run(run.registered["xgboost"]["run_id"]).data.tags
    through = np.datetime64(through["trained_through"], "us")
    # bars only up to 10 days after training: their labels are in the table (it was built on
    # all bars), but read as of ``end`` the 20-bar ones look past it, so none of them is known
    end = (through + np.timedelta64(10, "D")).astype(object).replace(tzinfo=UTC)
    data = load_training_data(url, SYMBOLS, end=end)
    recent = data.ts > through
    assert recent.any() and np.isnan(data.returns[recent, -1]).all()
    assert np.isfinite(data.returns[recent & (data.rows_left >= 1), 0]).all()
    with pytest.raises(NothingToUpdate, match="nothing to update: qtis-xgboost version 1 has seen"):
        update_model(url, "xgboost", tracking=TrackingSettings(), version=1, end=end)

    from cli.app import app

    monkeypatch.setenv("QTIS_DATABASE_URL", url)
    out = CliRunner().invoke(app, ["update", "--model", "ridge"])
    assert out.exit_code == 2 and "cannot update 'ridge'" in out.output


@pytest.mark.slow
def test_cli_update(trained, monkeypatch, tmp_path):
    url, _ = trained
    from cli.app import app

    monkeypatch.setenv("QTIS_DATABASE_URL", url)
    path = tmp_path / "update.json"
    args = ["update", "--model", "xgboost", "--rounds", "3", "--json-out", str(path)]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "pending" in out.output and "mse_h1" in out.output
    report = json.loads(path.read_text())
    assert report["registered"] == "qtis-xgboost" and report["details"]["rounds_added"] == 3
    assert int(report["new_version"]) == int(report["base_version"]) + 1
