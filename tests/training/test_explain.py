"""SHAP explanations: exact for trees, expected gradients for the networks; each finds the one
feature a planted target depends on, and the attributions add up to the forecasts."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import TrainingData
from training.explain import (
    explain,
    explain_network,
    importance_figure,
    rank_agreement,
    sample_rows,
    summary_figure,
)
from training.models.sequence import SequenceModel
from training.models.tabular import XGBoostModel

NAMES = ("noise_a", "signal", "noise_b", "noise_c")


def _planted(n_times: int = 400, symbols: int = 2, seed: int = 0) -> TrainingData:
    """Targets that depend on feature 'signal' of the current bar only."""
    rng = np.random.default_rng(seed)
    n = n_times * symbols
    features = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    signal = features[:, 1:2]
    returns = (np.c_[0.01 * signal, -0.02 * signal] + rng.normal(0, 1e-3, (n, 2))).astype(
        np.float32
    )
    ts = np.tile(np.arange(n_times).astype("datetime64[D]").astype("datetime64[us]"), symbols)
    return TrainingData(
        symbols=np.repeat([f"S{i}" for i in range(symbols)], n_times),
        ts=ts,
        features=features,
        returns=returns,
        volatility=np.abs(returns),
        feature_names=NAMES,
        horizons=(1, 5),
    )


def test_tree_shap_is_exact_and_finds_the_signal():
    data = _planted()
    rows = np.arange(len(data))
    model = XGBoostModel(
        n_estimators=400, max_depth=3, learning_rate=0.3, early_stopping_rounds=5, n_jobs=1
    ).fit(data, rows[:600], rows[600:])
    booster = model.model.get_booster()
    assert model.model.best_iteration + 1 < booster.num_boosted_rounds()  # stopped early
    sample = sample_rows(rows, 100, seed=1)
    attributions = explain(model, data, sample, background=sample)
    assert attributions.method == "tree" and attributions.values.shape == (100, 4, 2)
    assert attributions.ranking()[0] == "signal"
    # local accuracy: base value plus the attributions is the forecast
    total = attributions.values.sum(axis=1) + attributions.base_values
    np.testing.assert_allclose(total, model.predict(data, sample), atol=1e-5)
    table = attributions.importance()
    assert list(table["rank"]) == [1, 2, 3, 4] and table["mean_abs"].is_monotonic_decreasing
    assert set(table.columns) >= {"mean_abs_h1", "mean_abs_h5"}


@pytest.mark.slow
def test_gradient_shap_on_a_network_finds_the_signal():
    data = _planted()
    rows = np.flatnonzero(data.row_in_symbol >= 4)
    model = SequenceModel(
        "lstm", window=5, config={"hidden": (8,), "dense": 8, "dropout": 0.0}, max_epochs=8,
        batch_size=64, lr=5e-3,
    ).fit(data, rows[:500], rows[500:600])  # fmt: skip
    bundle = model.bundle()
    explained, background = sample_rows(rows[600:], 60, 1), sample_rows(rows[:500], 50, 2)
    offsets = np.arange(-4, 1)
    attributions = explain_network(
        bundle,
        data.features[explained[:, None] + offsets],
        data.features[background[:, None] + offsets],
        NAMES,
        data.horizons,
        nsamples=200,
    )
    assert attributions.method == "gradient" and attributions.values.shape == (60, 4, 2)
    assert attributions.ranking()[0] == "signal"
    top = attributions.importance().set_index("feature")["mean_abs"]
    assert top["signal"] > 3 * top.drop("signal").max()
    # expected gradients are complete in expectation: the sum tracks forecast - base
    pred = bundle.predict_windows(data.features[explained[:, None] + offsets])
    total = attributions.values.sum(axis=1)
    for h in range(2):
        assert np.corrcoef(total[:, h], pred[:, h] - attributions.base_values[h])[0, 1] > 0.9
    # a row without a full window of its own symbol behind it is refused, not wrapped around
    with pytest.raises(ValueError, match="full 5-bar window"):
        explain(bundle, data, np.array([2, 600]), background)


def test_rank_agreement_and_figures():
    data = _planted()
    rows = np.arange(len(data))
    model = XGBoostModel(n_estimators=30, max_depth=2, n_jobs=1).fit(data, rows[:600], rows[600:])
    a = explain(model, data, rows[:100], rows[:100])
    b = explain(model, data, rows[100:200], rows[100:200])
    same = rank_agreement(a.importance(), a.importance(), top=2)
    assert same["spearman"] == pytest.approx(1.0) and same["top_overlap"] == 1.0
    assert rank_agreement(a.importance(), b.importance(), top=1)["top_overlap"] == 1.0
    reversed_ = a.importance().assign(mean_abs=lambda t: -t["mean_abs"])
    assert rank_agreement(a.importance(), reversed_)["spearman"] == pytest.approx(-1.0)
    for make in (summary_figure, importance_figure):
        figure = make(a)
        assert figure.axes and figure.axes[0].has_data()
