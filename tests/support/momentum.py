"""A model whose forecast a test can recompute from the bars, served in process through the real
``Predictor``: what the audit trail and the model-threshold sweep are tested against."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from registry.loaded import LoadedModel
from transforms.spec import default_spec

ARTIFACT = "ab" * 32


def momentum_model(artifact: str | None = ARTIFACT) -> LoadedModel:
    """A registered-looking model whose forecast a test can recompute from the bars: the
    5-bar mean's distance from the 20-bar mean, for every horizon."""

    def predict_features(x: np.ndarray) -> np.ndarray:
        value = (x[:, 0].astype(np.float64) - x[:, 1]) / x[:, 1]
        return np.repeat(value[:, None], len(default_spec().horizons), axis=1)

    impl = SimpleNamespace(input_kind="features", bundle=SimpleNamespace(
        predict_features=predict_features))  # fmt: skip
    return LoadedModel(
        "champion", "qtis-test", "7", "run-7", impl, 1, ("sma_5", "sma_20"),
        default_spec().horizons, artifact_sha256=artifact,
    )  # fmt: skip
