"""The model families beyond the seed's three (LightGBM, the attention BiLSTM, the temporal CNN,
cross-asset attention):
one catalog, fit/predict, portable files, SHAP, tuning arguments, online updates; and the
random-walk check that no family finds an edge where there is none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant.splits import PurgedWalkForward
from tests.support.bars import load_bars
from tests.support.db import copy_database
from tests.support.folds import window_fold
from training.data import load_training_data
from training.evaluate import evaluate
from training.explain import explain
from training.families import FAMILIES, SEED_FAMILIES, is_tree, parse_families
from training.models.networks import NETWORKS, AttentionBiLSTM, TemporalCNN, network_config
from training.models.tabular import TREE_MODELS, LightGBMModel
from training.portable import Portable, read, write
from training.runner import SIZES, TrainConfig, override_params
from training.studies import estimator_kwargs
from transforms.dbt_runner import build
from warehouse.providers.synthetic import SyntheticMarket

NEW = ("lightgbm", "bilstm_attention", "cnn", "cross_asset")


@pytest.fixture(scope="module")
def fold(data):
    train, val, test = window_fold(data, 30)
    return train[-800:], val, test


def test_every_family_has_one_model_and_unknown_names_are_refused():
    assert set(FAMILIES) == set(NETWORKS) | set(TREE_MODELS)
    assert {f for f in FAMILIES if is_tree(f)} == set(TREE_MODELS)
    assert set(SEED_FAMILIES) < set(FAMILIES) and set(NEW) <= set(FAMILIES)
    assert parse_families("all") == FAMILIES
    assert parse_families("cnn, lightgbm") == ("cnn", "lightgbm")
    with pytest.raises(ValueError, match="unknown model 'gru'; choose from lstm"):
        parse_families("cnn,gru")
    assert set(SIZES["seed"]) == set(NETWORKS) and set(SIZES["small"]) == set(NETWORKS)


def test_attention_weights_are_a_distribution_over_the_window():
    torch.manual_seed(0)
    net = AttentionBiLSTM(6, 5, network_config("bilstm_attention", {"hidden": 8})).eval()
    x = torch.randn(4, 30, 6)
    states, weights = net.attention(x)
    assert states.shape == (4, 30, 16) and weights.shape == (4, 30)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert net(x).shape == (4, 5)


def test_the_cnn_sees_the_whole_window_and_never_a_later_bar():
    torch.manual_seed(0)
    net = TemporalCNN(6, 5, network_config("cnn", {"channels": 8})).eval()
    x = torch.randn(2, 60, 6)
    moved = x.clone()
    moved[:, 0] += 5.0  # the window's first bar: inside the receptive field (63 bars)
    assert not torch.allclose(net(x), net(moved))
    # causal: the output after bar 30 of a longer series equals the output on bars 0..30
    with torch.no_grad():
        h = net.inp(x.transpose(1, 2))
        for pad, conv in zip(net.pads, net.convs, strict=True):
            h = h + torch.relu(conv(torch.nn.functional.pad(h, (pad, 0))))
    torch.testing.assert_close(net.head(h[:, :, 30]), net(x[:, :31]))


@pytest.mark.parametrize("family", NEW)
def test_new_families_fit_predict_and_serve_from_their_files(family, data, fold, tmp_path):
    train, val, test = fold
    config = TrainConfig(models=(family,), size="tiny", window=30, epochs=1, xgb_estimators=60)
    model = config.factories()[family]().fit(data, train, val)
    pred = model.predict(data, test)
    assert pred.shape == (len(test), 5) and np.isfinite(pred).all() and pred.std() > 0
    bundle = model.bundle() if is_tree(family) else model.bundle().compile()
    kind = "features" if is_tree(family) else "windows"
    write(Portable(bundle, kind, data.feature_names, 1 if is_tree(family) else 30), tmp_path / "m")
    served = read(tmp_path / "m")
    picked = np.arange(8)
    if family == "cross_asset":  # a request is one cross-section: the symbols at one bar
        picked = np.flatnonzero(data.ts[test] == data.ts[test[0]])
        assert len(picked) == 2
    rows = test[picked]
    x = data.features[rows] if is_tree(family) else data.features[rows[:, None] + np.arange(-29, 1)]
    np.testing.assert_allclose(served.predict(x), pred[picked], rtol=1e-4, atol=1e-6)
    # SHAP: the attributions add up to the forecast (exactly for trees, by design of TreeSHAP)
    explained = explain(served.bundle, data, rows, train[-20:], nsamples=20)
    assert explained.values.shape == (len(rows), len(data.feature_names), 5)
    if is_tree(family):
        total = explained.base_values + explained.values.sum(axis=1)
        np.testing.assert_allclose(total, pred[picked], rtol=1e-3, atol=1e-6)
    if family == "bilstm_attention":
        weights = served.bundle.attention(x)
        assert weights.shape == (8, 30)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_a_lightgbm_update_boosts_more_rounds_from_the_trees_it_predicts_with(data, fold):
    train, val, test = fold
    base = LightGBMModel(n_estimators=40, n_jobs=1).fit(data, train[:-200], val)
    updated, details = base.boosted(data, train[-200:], rounds=10)
    assert details["rounds_added"] == 10
    assert details["rounds_after"] == details["rounds_before"] + 10
    assert not np.allclose(updated.predict(data, test), base.predict(data, test))


def test_tuning_arguments_and_overrides_of_the_new_families():
    assert override_params("lightgbm", {"num_leaves": 7}) == {"num_leaves": 7}
    assert override_params("cnn", {"channels": 8, "lr": 1e-3}) == {
        "config": {"channels": 8},
        "lr": 1e-3,
    }
    with pytest.raises(ValueError, match="unknown cnn parameter 'hidden'"):
        override_params("cnn", {"hidden": 8})
    common = {"lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.1, "batch_size": 64, "width": 2.0}
    widened = estimator_kwargs("bilstm_attention", common, "small")["config"]
    assert widened == {"hidden": 32, "attention": 32, "dropout": 0.1}
    assert estimator_kwargs("cnn", common, "small")["config"]["channels"] == 32
    assert estimator_kwargs("lightgbm", {"num_leaves": 9}, "small") == {"num_leaves": 9}


@pytest.mark.slow
def test_no_family_finds_an_edge_in_a_driftless_random_walk(pg_server, backends, backend):
    """20 independent random walks (no momentum, no common factor, no jumps): out of sample, every
    family's and baseline's direction of the next bar is right 50% +- 2% of the time. A family
    that reads a label, a later bar or another fold's statistics beats that."""
    walk = SyntheticMarket(
        n_symbols=20, n_bars=800, seed=11, market_beta=0.0, sector_weight=0.0, jump_rate=0.0,
        regime_persistence=1.0,
    )  # fmt: skip
    url = copy_database(pg_server, backends.migrated(backend))
    load_bars(url, walk.load())
    report = build(url, full_refresh=True)
    assert report.success, [(n.name, n.message) for n in report.failures()]
    data = load_training_data(url)
    config = TrainConfig(models=FAMILIES, size="tiny", window=20, epochs=1, xgb_estimators=40,
                         min_history=60)  # fmt: skip
    splitter = PurgedWalkForward(n_splits=1, horizon=20, first_test=0.5)
    evaluation = evaluate(data, config.factories(), splitter, window=20, min_history=60)
    rates = {}
    for name in (*FAMILIES, "ridge"):
        metrics = evaluation.horizon_metrics(name, 0)
        rates[name] = metrics["hit_rate"].value
        assert metrics["n"] > 5000, metrics["n"]
    assert all(abs(rate - 0.5) <= 0.02 for rate in rates.values()), rates
