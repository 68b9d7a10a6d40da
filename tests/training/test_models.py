"""Models on the bundled feature store: shapes, seed architectures, reproducibility, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.support.cli import qtis
from tests.support.folds import window_fold
from training.models.networks import LSTMConfig, StackedLSTM, TransformerConfig, WindowTransformer
from training.models.sequence import SequenceBundle, SequenceModel
from training.models.tabular import RidgeModel, XGBoostModel
from training.portable import Portable, read, write
from training.runner import SIZES
from training.windows import FeatureScaler, WindowDataModule, WindowDataset, window_ends


@pytest.fixture(scope="module")
def fold(data):
    return window_fold(data, 20)


def test_seed_architectures():
    lstm = StackedLSTM(56, 5, LSTMConfig())
    assert [m.hidden_size for m in lstm.lstms] == [128, 64, 32]
    assert lstm.head[0].out_features == 50 and lstm.head[-1].out_features == 5
    assert isinstance(lstm.norm, torch.nn.BatchNorm1d) and lstm.dropout.p == 0.2
    tr = WindowTransformer(56, 5, 60, TransformerConfig())
    layer = tr.encoder.layers[0]
    assert len(tr.encoder.layers) == 4 and layer.self_attn.num_heads == 8
    assert layer.linear1.out_features == 2048 and tr.position.shape == (1, 60, 512)
    lstm.eval()
    tr.eval()
    x = torch.randn(3, 60, 56)
    assert lstm(x).shape == (3, 5) and tr(x).shape == (3, 5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_compiled_bundle_predicts_what_torch_predicts(kind, tmp_path):
    """The ONNX Runtime path (what registered models serve with) agrees with torch, for one
    window and a batch, and survives its portable files (what is registered)."""
    torch.manual_seed(0)
    config = SIZES["small"][kind]
    net = (
        StackedLSTM(56, 5, LSTMConfig(**config))
        if kind == "lstm"
        else WindowTransformer(56, 5, 30, TransformerConfig(**config))
    )
    rng = np.random.default_rng(0)
    bundle = SequenceBundle(
        kind=kind,
        n_features=56,
        n_outputs=5,
        window=30,
        config=config,
        state=net.state_dict(),
        scaler=FeatureScaler().fit(rng.normal(size=(500, 56)).astype(np.float32)),
        target_scale=np.full(5, 0.02, dtype=np.float32),
    )
    windows = rng.normal(2.0, 3.0, size=(7, 30, 56)).astype(np.float32)
    eager = bundle.predict_windows(windows)
    write(Portable(bundle.compile(), "windows", tuple(map(str, range(56))), 30), tmp_path / "m")
    compiled = read(tmp_path / "m").bundle
    assert compiled.onnx is not None and np.abs(eager).max() > 0
    for batch in (windows[:1], windows):
        np.testing.assert_allclose(compiled.predict_windows(batch), eager[: len(batch)], atol=1e-6)


def test_windows_are_views_and_scaler_uses_train_rows(data):
    scaler = FeatureScaler().fit(data.features[:1000])
    np.testing.assert_allclose(
        scaler.mean_[0], np.nanmean(data.features[:1000, 0].astype(np.float64)), rtol=1e-6
    )
    x = scaler.transform(data.features)
    ds = WindowDataset(x, data.returns, window_ends(data, 60), 60)
    window, _ = ds[0]
    assert window.shape == (60, x.shape[1]) and np.shares_memory(window.numpy(), x)
    assert not np.isnan(x).any()


def test_datamodule_scales_with_the_training_rows_only(data, fold):
    train, val, _ = fold
    dm = WindowDataModule(data, train, val, window=20, batch_size=32)
    others = np.setdiff1d(np.arange(len(data)), train)
    shifted = dataclasses.replace(data, features=data.features.copy())
    shifted.features[others] += 100.0  # validation, test and every other row move
    again = WindowDataModule(shifted, train, val, window=20, batch_size=32)
    np.testing.assert_array_equal(dm.scaler.mean_, again.scaler.mean_)
    np.testing.assert_array_equal(dm.target_scale, again.target_scale)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 20, data.features.shape[1]) and y.shape == (32, len(data.horizons))
    assert len(dm.val_dataloader().dataset) == len(val)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_sequence_models_are_reproducible(data, fold, kind):
    train, val, test = fold
    config = {"hidden": (8, 4), "dense": 4} if kind == "lstm" else {
        "d_model": 8, "heads": 2, "layers": 1, "feed_forward": 16
    }  # fmt: skip

    def fit_predict() -> np.ndarray:
        model = SequenceModel(kind, window=20, config=config, max_epochs=2, batch_size=64)
        return model.fit(data, train[-600:], val).predict(data, test)

    first, second = fit_predict(), fit_predict()
    assert first.shape == (len(test), 5) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_tabular_models(data, fold):
    train, val, test = fold
    xgb = XGBoostModel(n_estimators=50).fit(data, train, val)
    assert xgb.predict(data, test).shape == (len(test), 5)
    ridge = RidgeModel().fit(data, train, val)
    assert np.isfinite(ridge.predict(data, test)).all()


@pytest.mark.slow
def test_train_cli_reports_out_of_sample_next_to_baselines(built, tmp_path):
    url, _ = built
    out = tmp_path / "oos.json"
    env = {"QTIS_DATABASE_URL": url, "QTIS_HOME": str(tmp_path / ".qtis")}
    run = qtis(
        "train", "--size", "tiny", "--epochs", "1", "--splits", "2", "--window", "20",
        "--symbols", "IBM,MSFT", "--explain-samples", "0", "--json-out", str(out), env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Out of sample" in run.stdout and "baseline" in run.stdout
    report = json.loads(out.read_text())
    assert set(report["models"]) == {
        "lstm", "transformer", "xgboost", "zero", "ridge", "buy_and_hold"
    }  # fmt: skip
    xgb = report["models"]["xgboost"]
    assert len(xgb["folds"]) == 2 and xgb["test_rows"] > 1000
    assert set(xgb["horizons"]) == {"h1", "h2", "h5", "h10", "h20"}
    assert {"sharpe", "max_drawdown", "turnover"} <= set(xgb["trading"])
    fold = xgb["folds"][0]
    assert {"mse_h20", "ic_h20", "hit_rate_h20", "trading"} <= set(fold)
    vol = report["volatility"]
    assert vol["forecast"] == "garch_vol" and set(vol["forecast_metrics"]) == set(xgb["horizons"])
    assert (
        vol["forecast_metrics"]["h5"]["n"] > 1000
        and len(vol["reference_metrics"]["h5"]["folds"]) == 2
    )
    assert "Volatility forecast" in run.stdout
    bad = qtis("train", "--model", "gru", env=env)
    assert bad.returncode == 2 and "unknown model" in bad.stderr
