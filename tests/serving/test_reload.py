"""A hot reload swaps the models, the columns each one's windows are read with and the promotion
record together: after a reload to a champion with another feature list, symbol requests read
that champion's columns, and a challenger with the old list is shadowed on its own columns."""

from __future__ import annotations

import numpy as np

from registry.model_registry import ModelRegistry
from serving.predictor import Predictor
from serving.schemas import PredictRequest
from serving.settings import ServingSettings
from serving.windows import WindowSource
from tests.support.planted import SYMBOLS, register, with_features


def test_a_reload_to_a_champion_with_other_features_reads_its_columns(planted_store):
    url, data, tracking = planted_store
    few = data.feature_names[::11]
    wide = register(url, data, skill=1.0, seed=21)  # qtis-xgboost: every feature column
    narrow = register(url, with_features(data, few), skill=1.0, seed=22, family="lstm")
    registry = ModelRegistry(url, tracking)
    registry.move_alias("champion", "qtis-xgboost", wide)
    predictor = Predictor(url, ServingSettings(serve_shadow_log=False), tracking=tracking)
    try:
        assert predictor.predict(PredictRequest(symbols=SYMBOLS)).model == "qtis-xgboost"
        registry.move_alias("champion", "qtis-lstm", narrow)
        registry.move_alias("challenger", "qtis-xgboost", wide)
        assert predictor.reload() == {
            "champion": f"qtis-lstm v{narrow}", "challenger": f"qtis-xgboost v{wide}",
        }  # fmt: skip
        answer = predictor.predict(PredictRequest(symbols=SYMBOLS))
        own = WindowSource(url, few).latest(SYMBOLS, None, 1)[0]
        assert answer.model == "qtis-lstm"
        np.testing.assert_allclose(answer.predictions, predictor.champion.predict(own), rtol=1e-6)
        prepared = predictor.prepare(PredictRequest(symbols=SYMBOLS))
        assert prepared.windows.shape[2] == len(few)
        assert prepared.shadow.name == "qtis-xgboost"
        assert prepared.shadow_windows.shape[2] == len(data.feature_names)
        # windows sent in the champion's columns cannot be shadowed by a model of other columns
        sent = predictor.prepare(PredictRequest(windows=own.tolist()))
        assert sent.shadow is None and sent.shadow_windows is None
    finally:
        predictor.close()
