"""Portable model files: each kind of registered bundle (XGBoost, a network, the ensemble over
both) written and read back predicts exactly what it predicted, and nothing written is a pickle;
what has no portable format, or was written before, is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.planted import Planted
from training.data import TrainingData
from training.ensemble import EnsembleBundle, equal_weights
from training.models.networks import LSTMConfig, StackedLSTM
from training.models.sequence import SequenceBundle
from training.models.tabular import XGBoostModel
from training.portable import NotPortable, Portable, read, write
from training.windows import FeatureScaler

FEATURES = tuple(f"f{i}" for i in range(6))
RNG = np.random.default_rng(0)
WINDOWS = RNG.normal(size=(9, 12, len(FEATURES))).astype(np.float32)


def pickled(directory) -> list[str]:
    """Files that start like a pickle (protocol 2 and later)."""
    return [p.name for p in directory.rglob("*") if p.is_file() and p.read_bytes()[:1] == b"\x80"]


def xgboost() -> XGBoostModel:
    """A small booster on two planted signals, early-stopped (its best iteration must survive)."""
    n = 400
    features = RNG.normal(size=(n, len(FEATURES))).astype(np.float32)
    returns = np.c_[features[:, :1] * 0.01, -features[:, 1:2] * 0.02].astype(np.float32)
    data = TrainingData(
        symbols=np.full(n, "S"), ts=np.arange(n).astype("datetime64[D]").astype("datetime64[us]"),
        features=features, returns=returns, volatility=np.abs(returns), feature_names=FEATURES,
        horizons=(1, 2),
    )  # fmt: skip
    return XGBoostModel(n_estimators=200, max_depth=3, early_stopping_rounds=5, n_jobs=1).fit(
        data, np.arange(300), np.arange(300, 400)
    )


def network(compiled: bool) -> SequenceBundle:
    torch.manual_seed(0)
    config = {"hidden": (8, 4), "dense": 6, "dropout": 0.0}
    net = StackedLSTM(len(FEATURES), 2, LSTMConfig(**config)).eval()
    bundle = SequenceBundle(
        kind="lstm", n_features=len(FEATURES), n_outputs=2, window=12, config=config,
        state=net.state_dict(), target_scale=np.array([0.01, 0.02], dtype=np.float32),
        scaler=FeatureScaler().fit(RNG.normal(size=(200, len(FEATURES))).astype(np.float32)),
    )  # fmt: skip
    return bundle.compile() if compiled else bundle


@pytest.mark.parametrize("compiled", [True, False])
def test_every_kind_reads_back_predicting_the_same(tmp_path, compiled):
    tree, net = xgboost(), network(compiled)
    stack = equal_weights(("lstm", "xgboost"), (1, 2))
    ensemble = EnsembleBundle({"lstm": net, "xgboost": tree}, stack, 2, {"lstm": "3"})
    cases = {
        "tree": (Portable(tree, "features", FEATURES), WINDOWS[:, -1]),
        "net": (Portable(net, "windows", FEATURES, 12), WINDOWS),
        "ensemble": (Portable(ensemble, "windows", FEATURES, 12), WINDOWS),
    }
    for name, (model, x) in cases.items():
        write(model, tmp_path / name)
        back = read(tmp_path / name)
        assert (back.input_kind, back.features, back.window) == (
            model.input_kind, model.features, model.window,
        )  # fmt: skip
        np.testing.assert_array_equal(back.predict(x), model.predict(x), err_msg=name)
        assert pickled(tmp_path / name) == [], name
    assert (read(tmp_path / "net").bundle.onnx is not None) is compiled
    assert read(tmp_path / "ensemble").bundle.versions == {"lstm": "3"}


def test_what_has_no_portable_format_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="Planted has no portable format"):
        write(Portable(Planted(1.0), "features", FEATURES), tmp_path / "planted")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "python_model.pkl").write_bytes(b"\x80\x05.")
    with pytest.raises(NotPortable, match="registered before QTIS stored models without pickle"):
        read(tmp_path / "old")
