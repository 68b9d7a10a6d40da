"""Transfer learning: pre-train on every symbol, fine-tune per group on that group's training rows
only, route predictions by group; evaluated beside the pre-trained network on the same rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from quant.splits import PurgedWalkForward
from registry.aliases import force, promote
from serving.predictor import Predictor
from serving.probe import serving_probe
from serving.schemas import ExplainRequest, PredictRequest
from serving.settings import ServingSettings
from tests.support.cli import qtis
from tests.support.db import fresh_database
from tests.support.folds import window_fold
from tests.support.promotion import relaxed
from training import portable
from training.evaluate import evaluate
from training.explain import explain
from training.families import fine_tuned_variants, parse_training
from training.models.sequence import SequenceModel
from training.models.tabular import ZeroModel
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings
from training.transfer import FineTunedModel, SharedFit, read_sectors, with_fine_tuning
from training.transfer_report import compare
from warehouse.db import sqlalchemy_url

TINY = {"hidden": (8, 4), "dense": 4}


def network() -> SequenceModel:
    return SequenceModel("lstm", window=20, config=TINY, max_epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def fold(data):
    train, val, test = window_fold(data, 20)
    # a short train slice per symbol keeps the fits fast
    keep = np.concatenate([train[data.symbols[train] == s][-300:] for s in ("IBM", "MSFT")])
    return np.sort(keep), val, test


@pytest.fixture(scope="module")
def tuned(data, fold):
    train, val, _ = fold
    return FineTunedModel(network, steps=5, min_rows=50, batch_size=64).fit(data, train, val)


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_group_gets_its_own_weights_and_the_rest_stay_pre_trained(data, fold, tuned):
    train, _, test = fold
    assert set(tuned.bundles_) == {"IBM", "MSFT"}
    for group, bundle in tuned.bundles_.items():
        assert not states_equal(bundle.state, tuned.pretrained_.state), group
        assert tuned.details_[group] == {
            "train_rows": 300, "fine_tuned": True, "steps": 5, "batch_size": 64
        }  # fmt: skip
    pre = tuned.pretrained_.predict_rows(data.features, test)
    post = tuned.predict(data, test)
    assert post.shape == pre.shape and not np.allclose(pre, post)
    for symbol in ("IBM", "MSFT"):  # each row is routed to its own group's weights
        rows = test[data.symbols[test] == symbol]
        expected = tuned.bundles_[symbol].predict_rows(data.features, rows)
        np.testing.assert_array_equal(post[data.symbols[test] == symbol], expected)
    # a group with too few rows, or one never seen, keeps the pre-trained weights
    few = FineTunedModel(network, steps=5, min_rows=301, groups={"MSFT": "tech"})
    few.fine_tune(tuned.pretrained_, data, train)
    assert few.bundles_ == {}
    assert (
        few.details_["tech"]["fine_tuned"] is False
        and "fewer than 301" in (few.details_["tech"]["reason"])
    )
    assert "no sector" in few.details_["(no sector)"]["reason"]
    np.testing.assert_array_equal(few.predict(data, test), pre)
    unseen = FineTunedModel(network, steps=5, min_rows=301)
    unseen.fine_tune(tuned.pretrained_, data, train[data.symbols[train] == "MSFT"])
    assert set(unseen.details_) == {"MSFT"}
    np.testing.assert_array_equal(unseen.predict(data, test), pre)
    assert unseen.details_["IBM"] == {
        "train_rows": 0, "fine_tuned": False, "reason": "no training rows"
    }  # fmt: skip


def test_the_fine_tuned_model_routes_by_symbol_and_stores_without_pickle(
    data, fold, tuned, tmp_path
):
    """What is registered: each symbol's windows go to its copy, windows without a symbol (or
    of a symbol never fine-tuned) to the pre-trained network; the files load back the same."""
    _, _, test = fold
    routed = tuned.bundle()
    assert routed.routes == {"IBM": "IBM", "MSFT": "MSFT"} and routed.grouping == "symbol"
    rows = test[:: max(1, len(test) // 40)]
    windows = data.features[rows[:, None] + np.arange(-19, 1)]
    symbols = list(data.symbols[rows])
    assert {"IBM", "MSFT"} <= set(symbols)
    np.testing.assert_array_equal(
        routed.predict_windows(windows, symbols), tuned.predict(data, rows)
    )
    np.testing.assert_array_equal(
        routed.predict_windows(windows), tuned.pretrained_.predict_windows(windows)
    )
    unknown = routed.predict_windows(
        windows, ["AAPL", None] * (len(rows) // 2) + ["X"] * (len(rows) % 2)
    )
    np.testing.assert_array_equal(unknown, tuned.pretrained_.predict_windows(windows))
    with pytest.raises(ValueError, match="2 symbols for"):
        routed.predict_windows(windows, ["IBM", "MSFT"])
    model = portable.Portable(routed, "windows", data.feature_names, 20)
    portable.write(model, tmp_path / "m")
    back = portable.read(tmp_path / "m").bundle
    assert back.routes == routed.routes and set(back.copies) == {"IBM", "MSFT"}
    np.testing.assert_array_equal(
        back.predict_windows(windows, symbols), routed.predict_windows(windows, symbols)
    )
    # sectors: every symbol of a fine-tuned sector goes to the sector's copy
    by_sector = FineTunedModel(
        None, "sector", {"IBM": "tech", "MSFT": "tech"}, steps=2, min_rows=50
    )
    by_sector.fine_tune(tuned.pretrained_, data, fold[0])
    assert by_sector.bundle().routes == {"IBM": "tech", "MSFT": "tech"}


def test_a_fine_tuned_model_is_explained_row_by_row_by_its_own_copy(data, fold, tuned):
    train, _, test = fold
    routed = tuned.bundle()
    ibm, msft = (test[data.symbols[test] == s][-3:] for s in ("IBM", "MSFT"))
    rows, background = np.sort(np.concatenate([ibm, msft])), train[-30:]
    found = explain(routed, data, rows, background, nsamples=20)
    assert found.values.shape == (6, len(data.feature_names), len(data.horizons))
    for symbol, own in (("IBM", ibm), ("MSFT", msft)):
        alone = explain(tuned.bundles_[symbol], data, own, background, nsamples=20)
        np.testing.assert_allclose(found.values[np.isin(rows, own)], alone.values)


def test_a_group_is_fine_tuned_on_its_own_training_rows_only(data, fold, tuned):
    """IBM's rows, and every validation and test label, moved: MSFT's fine-tune is the same
    (and the pre-trained weights it started from are left as they were)."""
    train, val, test = fold
    before = {k: v.clone() for k, v in tuned.pretrained_.state.items()}
    ibm = data.symbols == "IBM"
    moved = dataclasses.replace(data, returns=data.returns.copy(), features=data.features.copy())
    moved.returns[ibm] *= -3.0
    moved.features[ibm] += 1.0
    moved.returns[val], moved.returns[test] = -1.0, 1.0
    again = FineTunedModel(network, steps=5, min_rows=50, batch_size=64)
    again.fine_tune(tuned.pretrained_, moved, train)
    assert states_equal(again.bundles_["MSFT"].state, tuned.bundles_["MSFT"].state)
    assert not states_equal(again.bundles_["IBM"].state, tuned.bundles_["IBM"].state)
    assert states_equal(tuned.pretrained_.state, before)
    msft = test[data.symbols[test] == "MSFT"]
    np.testing.assert_array_equal(again.predict(data, msft), tuned.predict(data, msft))


def test_pre_training_and_fine_tuning_never_see_test_labels(data, fold, tuned):
    train, val, test = fold
    moved = dataclasses.replace(data, returns=data.returns.copy())
    moved.returns[test] = 1.0
    refit = FineTunedModel(network, steps=5, min_rows=50, batch_size=64).fit(moved, train, val)
    assert states_equal(refit.pretrained_.state, tuned.pretrained_.state)
    np.testing.assert_array_equal(refit.predict(moved, test), tuned.predict(data, test))


def test_the_evaluation_scores_both_on_the_same_rows_from_one_pre_training(built, data):
    calls = []

    def counted() -> SequenceModel:
        calls.append(1)
        return network()

    factories, tuning = with_fine_tuning(
        {"lstm": counted, "zero": ZeroModel}, ["lstm"], "sector",
        read_sectors(built[0], ["IBM", "MSFT"]), steps=3, min_rows=50, batch_size=64,
    )  # fmt: skip
    assert list(factories) == ["lstm", "lstm+ft_sector", "zero"]
    recent = data.take(data.rows_left < 700)  # each symbol's last bars: short fits
    splitter = PurgedWalkForward(n_splits=1, horizon=20, first_test=0.7)
    evaluation = evaluate(recent, factories, splitter, window=20)
    assert len(calls) == 1  # one pre-training, shared by both entries
    pre, post = evaluation.results["lstm"], evaluation.results["lstm+ft_sector"]
    np.testing.assert_array_equal(pre.rows, post.rows)
    assert not np.allclose(pre.predictions, post.predictions)
    report = evaluation.to_dict()
    assert {"lstm", "lstm+ft_sector", "zero"} == set(report["models"])
    section = compare(evaluation, tuning)["lstm"]
    # both symbols are in one sector: one fine-tuned copy
    assert [list(f) for f in section["folds"]] == [["Information Technology"]]
    dm = section["diebold_mariano"]["h1"]
    labelled = pre.rows[np.isfinite(recent.returns[pre.rows, 0])]
    assert dm["n"] == len(np.unique(recent.ts[labelled])) and 0 <= dm["p_value"] <= 1
    assert section["verdict"].startswith("fine-tuning") and set(section["symbols_mse_h1"]) == {
        "IBM", "MSFT"
    }  # fmt: skip


def test_a_fine_tuned_variant_names_its_family_and_grouping():
    assert parse_training("lstm+ft_symbol,xgboost", None) == (("lstm", "xgboost"), "symbol")
    assert parse_training("lstm,cnn+ft_sector", "sector") == (("lstm", "cnn"), "sector")
    assert parse_training("lstm", None) == (("lstm",), None)
    with pytest.raises(ValueError, match="one grouping per run"):
        parse_training("lstm+ft_symbol", "sector")
    with pytest.raises(ValueError, match="unknown model 'lstm\\+ft_desk'"):
        parse_training("lstm+ft_desk", None)
    assert fine_tuned_variants(("lstm", "xgboost", "cross_asset"), "symbol") == ("lstm+ft_symbol",)
    with pytest.raises(ValueError, match="tree models and cross_asset are not"):
        fine_tuned_variants(("xgboost",), "symbol")
    with pytest.raises(ValueError, match="unknown grouping 'desk'"):
        fine_tuned_variants(("lstm",), "desk")


def test_shared_fit_refits_for_another_fold(data, fold):
    train, val, _ = fold
    made = []
    shared = SharedFit(lambda: made.append(1) or ZeroModel())
    first = shared.fit(data, train, val)
    assert shared.fit(data, train, val) is first and len(made) == 1
    shared.fit(data, train[:-10], val)
    assert len(made) == 2


@pytest.mark.slow
def test_train_cli_with_fine_tuning_reports_both_and_logs_the_comparison(
    built, pg_server, tmp_path
):
    url, _ = built
    out = tmp_path / "oos.json"
    tracking = sqlalchemy_url(fresh_database(pg_server))
    env = {
        "QTIS_DATABASE_URL": url,
        "QTIS_HOME": str(tmp_path / ".qtis"),
        "QTIS_MLFLOW_TRACKING_URI": tracking,
    }
    run = qtis(
        "train", "--model", "lstm+ft_symbol", "--size", "tiny", "--epochs", "1", "--splits", "2",
        "--window", "20", "--symbols", "IBM,MSFT", "--explain-samples", "0", "--no-tuned",
        "--fine-tune-steps", "3", "--json-out", str(out), env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pre-trained vs fine-tuned per symbol" in run.stdout
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"lstm", "lstm+ft_symbol", "zero", "ridge", "buy_and_hold"}
    assert report["models"]["lstm"]["test_rows"] == report["models"]["lstm+ft_symbol"]["test_rows"]
    section = report["fine_tuning"]["lstm"]
    assert [sorted(f) for f in section["folds"]] == [["IBM", "MSFT"]] * 2
    # the pre-trained model and, beside it, the fine-tuned one
    assert set(report["registered"]) == {"lstm", "lstm+ft_symbol"}
    assert report["registered"]["lstm+ft_symbol"]["registered"] == "qtis-lstm-ft-symbol"
    run_id = report["registered"]["lstm"]["run_id"]
    logged = MlflowClient(tracking, registry_uri=tracking).get_run(run_id).data
    assert {"ft_oos_ic_h1", "ft_oos_sharpe", "ft_dm_p_h1"} <= set(logged.metrics)
    assert logged.tags["fine_tune"] == "symbol"
    bad = qtis("train", "--model", "xgboost", "--fine-tune", "symbol", "--no-tuned", env=env)
    assert bad.returncode != 0 and "network family" in bad.stderr


@pytest.mark.slow
def test_the_fine_tuned_model_is_registered_gated_and_served_by_symbol(
    built, pg_server, tmp_path, monkeypatch
):
    url, _ = built
    monkeypatch.setenv("QTIS_MLFLOW_TRACKING_URI", sqlalchemy_url(fresh_database(pg_server)))
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / ".qtis"))
    tracking = TrackingSettings()
    config = TrainConfig(
        models=("lstm",), size="tiny", epochs=1, splits=2, window=20, explain_samples=20,
        fine_tune="symbol", fine_tune_steps=3,
    )  # fmt: skip
    run = run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)
    info, routed = run.registered["lstm+ft_symbol"], run.final_models["lstm+ft_symbol"]
    assert (info["registered"], str(info["version"])) == ("qtis-lstm-ft-symbol", "1")
    assert info["top_features"]  # explained, and the ranking saved for drift monitoring
    # fine-tuned from the very weights registered as qtis-lstm
    assert states_equal(routed.pretrained.state, run.final_models["lstm"].state)
    assert set(routed.copies) == {"IBM", "MSFT"}
    probe = serving_probe(url, tracking=tracking)
    (decision,) = promote(url, probe, relaxed(), [("qtis-lstm-ft-symbol", "1")], tracking=tracking)
    assert decision.model == "qtis-lstm-ft-symbol" and decision.gates  # judged by the gates
    if decision.decision != "promoted":
        force(url, "qtis-lstm-ft-symbol", "1", "served by symbol", probe, relaxed(),
              tracking=tracking)  # fmt: skip
    predictor = Predictor(url, ServingSettings(), tracking=tracking)
    try:
        assert predictor.info().champion.routes_by == "symbol"
        answer = predictor.predict(PredictRequest(symbols=["IBM", "MSFT"]))
        windows, _ = predictor.models.current.champion_windows.latest(["IBM", "MSFT"], None, 20)
        for i, symbol in enumerate(("IBM", "MSFT")):
            copy = routed.copies[symbol].predict_windows(windows[i : i + 1])[0]
            np.testing.assert_allclose(answer.predictions[i], copy, rtol=1e-5, atol=1e-7)
        raw = predictor.predict(PredictRequest(windows=windows.tolist()))
        pre = routed.pretrained.predict_windows(windows)
        np.testing.assert_allclose(raw.predictions, pre, rtol=1e-5, atol=1e-7)
        assert not np.allclose(raw.predictions, answer.predictions)
        explained = predictor.explain(ExplainRequest(symbol="MSFT"))
        np.testing.assert_allclose(explained.prediction, answer.predictions[1], rtol=1e-5)
    finally:
        predictor.close()
