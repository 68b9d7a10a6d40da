"""The cross-asset family: attention across the symbols of one bar's cross-section. The network is
permutation-equivariant over symbols and masks padding; the estimator trains on cross-sections and
predicts each row inside its bar's full cross-section, so a forecast moves with another symbol's
window at the same bar, never with a later bar, nor with which rows were asked for."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from training.data import TrainingData
from training.explain import explain_network
from training.models.cross_asset import (
    CrossAssetModel,
    CrossSectionDataModule,
    by_time,
    predict_cross_sections,
)
from training.models.networks import CrossAssetAttention, network_config
from training.runner import SIZES, TrainConfig, _with_fine_tuning
from training.studies import estimator_kwargs
from training.windows import window_ends

WINDOW = 10


def _market(n_bars: int = 160, late: int = 40, seed: int = 0) -> TrainingData:
    """Four symbols, the fourth listed ``late`` bars after the others; targets follow the
    cross-sectional rank of feature 0 (something only a cross-section shows)."""
    rng = np.random.default_rng(seed)
    symbols, n_features = 4, 3
    features = rng.normal(size=(symbols, n_bars, n_features)).astype(np.float32)
    signal = features[:, :, 0] - features[:, :, 0].mean(axis=0)
    returns = (0.01 * signal[..., None] + rng.normal(0, 1e-3, (symbols, n_bars, 2))).astype(
        np.float32
    )
    ts = np.arange(n_bars).astype("datetime64[D]").astype("datetime64[us]")
    keep = np.ones((symbols, n_bars), dtype=bool)
    keep[3, :late] = False
    return TrainingData(
        symbols=np.repeat([f"S{i}" for i in range(symbols)], n_bars)[keep.ravel()],
        ts=np.tile(ts, symbols)[keep.ravel()],
        features=features.reshape(-1, n_features)[keep.ravel()],
        returns=returns.reshape(-1, 2)[keep.ravel()],
        volatility=np.abs(returns.reshape(-1, 2))[keep.ravel()],
        feature_names=("f0", "f1", "f2"),
        horizons=(1, 5),
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[TrainingData, CrossAssetModel, np.ndarray]:
    data = _market()
    ends = window_ends(data, WINDOW)
    day = (data.ts[ends] - data.ts.min()) // np.timedelta64(1, "D")
    model = CrossAssetModel(
        window=WINDOW, config=SIZES["tiny"]["cross_asset"], max_epochs=1, batch_size=16
    )
    model.fit(data, ends[day < 100], ends[(day >= 105) & (day < 125)])
    return data, model, ends[day >= 130]


def test_attention_across_symbols_is_permutation_equivariant_and_ignores_padding():
    torch.manual_seed(0)
    config = network_config("cross_asset", {"d_model": 8, "heads": 2, "layers": 2})
    net = CrossAssetAttention(3, 2, config).eval()
    x = torch.randn(5, WINDOW, 3)  # one cross-section: 5 symbols
    out = net(x)
    assert out.shape == (5, 2)
    order = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(net(x[order]), out[order])
    # padded beside a wider cross-section, with garbage in the padding: the same outputs
    batch = torch.randn(2, 7, WINDOW, 3) * 100
    batch[0, :5] = x
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[0, 5:] = True
    torch.testing.assert_close(net.cross_sections(batch, padding)[0, :5], out)
    # it attends across symbols: another symbol's window moves this one's forecast
    moved = x.clone()
    moved[1] += 3.0
    assert not torch.allclose(net(moved)[0], out[0])


def test_training_batches_are_whole_cross_sections_with_absent_symbols_padded(fitted):
    data, model, _ = fitted
    ends = window_ends(data, WINDOW)
    groups = by_time(data.ts, ends)
    assert all(len(set(data.ts[g])) == 1 for g in groups)
    assert [len(g) for g in groups[:2]] == [3, 3] and len(groups[-1]) == 4  # S3 listed late
    assert isinstance(model.datamodule(data, ends, ends), CrossSectionDataModule)
    assert model.datamodule(data, ends, ends).batch_size == 16 // 4  # windows -> cross-sections
    assert model.datamodule(data, ends[:200], ends).batch_size == 16 // 2  # S0 and S1 only
    module = model.datamodule(data, ends, ends)
    module.setup("fit")
    x, y, padding = module.collate_fn([module.dataset(ends)[k] for k in (0, len(groups) - 1)])
    assert x.shape == (2, 4, WINDOW, 3) and y.shape == (2, 4, 2)
    assert padding.tolist() == [[False, False, False, True], [False] * 4]
    assert torch.isnan(y[0, 3]).all() and not torch.isnan(y[1]).any()


def test_a_forecast_moves_with_other_symbols_at_its_bar_never_with_later_bars(fitted):
    data, model, test = fitted
    bundle = model.bundle()
    pred = model.predict(data, test)
    assert pred.shape == (len(test), 2) and np.isfinite(pred).all()
    # the request does not matter: a row's forecast is made in its bar's full cross-section
    some = test[::5]
    np.testing.assert_array_equal(predict_cross_sections(bundle, data, some), pred[::5])
    row = test[data.symbols[test] == "S0"][5]
    t = data.ts[row]
    other = np.flatnonzero(data.symbols == "S1")
    before, after = other[data.ts[other] == t][0], other[data.ts[other] > t]
    base = predict_cross_sections(bundle, data, np.array([row]))

    def moved(rows: np.ndarray) -> np.ndarray:
        features = data.features.copy()
        features[rows] += 3.0
        return predict_cross_sections(bundle, replace(data, features=features), np.array([row]))

    assert not np.allclose(moved(np.arange(before - WINDOW + 1, before + 1)), base)
    np.testing.assert_array_equal(moved(after), base)  # no look-ahead across symbols
    # the served bundle reads a request as one cross-section: the bar's windows, any order
    rows = window_ends(data, WINDOW)
    rows = rows[data.ts[rows] == t][::-1]
    windows = data.features[rows[:, None] + np.arange(-WINDOW + 1, 1)]
    np.testing.assert_allclose(
        bundle.predict_windows(windows), model.predict(data, rows), rtol=1e-5, atol=1e-8
    )
    alone = bundle.predict_windows(windows[:1])  # a lone window attends to itself only
    assert alone.shape == (1, 2) and not np.allclose(alone, bundle.predict_windows(windows)[:1])


def test_shap_explains_a_symbol_inside_its_cross_section(fitted):
    data, model, test = fitted
    bundle = model.bundle()
    rows = window_ends(data, WINDOW)
    rows = rows[data.ts[rows] == data.ts[test[0]]]
    windows = data.features[rows[:, None] + np.arange(-WINDOW + 1, 1)]
    background = data.features[rows[:, None] - 30 + np.arange(-WINDOW + 1, 1)]
    found = explain_network(
        bundle, windows, background, data.feature_names, data.horizons, nsamples=800
    )
    assert found.values.shape == (len(rows), 3, 2)
    # expected gradients add up to the forecast less the mean forecast on the background,
    # each window explained with the rest of the request held (one explainer per window)
    offsets = []
    for i in range(len(rows)):
        rest = np.delete(windows, i, axis=0)
        stacks = [np.concatenate([b[None], rest]) for b in background]
        offsets.append(np.mean([bundle.predict_windows(s)[0] for s in stacks], axis=0))
    total = found.values.sum(axis=1) + np.array(offsets)
    np.testing.assert_allclose(total, bundle.predict_windows(windows), atol=1e-4)


def test_tuning_widens_the_cross_asset_network_in_whole_heads():
    common = {"lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.1, "batch_size": 64, "width": 1.5}
    widened = estimator_kwargs("cross_asset", common, "small")["config"]
    assert widened == {"d_model": 48, "feed_forward": 96, "dropout": 0.1}
    config = TrainConfig(models=("cross_asset",), size="tiny", window=WINDOW)
    assert isinstance(config.factories()["cross_asset"](), CrossAssetModel)


def test_cross_asset_is_not_fine_tuned_per_group():
    """A group's rows are not cross-sections: transfer learning leaves the family alone."""
    alone = TrainConfig(models=("cross_asset",), fine_tune="symbol")
    with pytest.raises(ValueError, match="cross_asset are not fine-tuned"):
        _with_fine_tuning("unused", _market(), alone)
    both = TrainConfig(models=("lstm", "cross_asset"), size="tiny", fine_tune="symbol")
    factories, fine_tuning = _with_fine_tuning("unused", _market(), both)
    assert set(fine_tuning.details) == {"lstm"} and "cross_asset" in factories
