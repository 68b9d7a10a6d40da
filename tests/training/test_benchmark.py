"""The model benchmark's scoring on a synthetic universe: a forecaster that knows part of the
next bar's return shows it in IC, ICIR and the top-k portfolio's information ratio; noise and
the baselines do not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.conventions import Conventions
from quant.splits import PurgedWalkForward
from training.benchmark import BenchmarkConfig, score, table
from training.data import TrainingData
from training.evaluate import evaluate
from training.models.tabular import HistoricalMeanModel, ZeroModel
from training.runner import TrainConfig


def _universe(bars: int = 400, symbols: int = 10, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    n = bars * symbols
    ts = np.tile(np.arange(bars).astype("datetime64[D]").astype("datetime64[us]"), symbols)
    returns = rng.normal(0, 0.01, size=(n, 2)).astype(np.float32)
    return TrainingData(
        symbols=np.repeat([f"S{i:02d}" for i in range(symbols)], bars),
        ts=ts,
        features=rng.normal(size=(n, 1)).astype(np.float32),
        returns=returns,
        volatility=np.abs(returns),
        feature_names=("x",),
        horizons=(1, 2),
    )


@dataclass
class Knows:
    """Forecasts ``skill`` x the true returns plus noise of their own scale."""

    skill: float

    def fit(self, data, train, validation):
        return self

    def predict(self, data, rows):
        noise = np.random.default_rng(len(rows)).normal(0, 0.01, (len(rows), 2))
        return (self.skill * np.nan_to_num(data.returns[rows]) + noise).astype(np.float32)


def test_skill_shows_in_ic_icir_and_the_portfolio_and_noise_does_not():
    data = _universe()
    models = {"skilled": lambda: Knows(0.5), "noise": lambda: Knows(0.0), "zero": ZeroModel,
              "buy_and_hold": HistoricalMeanModel}  # fmt: skip
    splitter = PurgedWalkForward(n_splits=2, horizon=2, first_test=0.5)
    evaluation = evaluate(data, models, splitter, window=1)
    config = BenchmarkConfig(top_k=3, conventions=Conventions(bootstrap_paths=200))
    result = score(evaluation, TrainConfig(cost_bps=1.0), config)
    rows = {r["model"]: r for r in result["models"]}
    skilled, noise = rows["skilled"], rows["noise"]
    assert skilled["ic"]["low"] > 0.2 and skilled["icir"]["low"] > 0.5
    assert skilled["information_ratio"]["low"] > 0
    assert noise["rank_ic"]["low"] < 0 < noise["rank_ic"]["high"]
    assert noise["information_ratio"]["low"] < 0
    assert rows["zero"]["active_return"] == 0  # no ranking: the portfolio is the universe
    assert result["verdict"]["ir_above_zero"] == ["skilled"]
    assert result["verdict"]["ir_above_best_baseline"][0] == "skilled"
    assert result["universe"] == [f"S{i:02d}" for i in range(10)]
    headers, lines = table(result)
    assert len(lines) == len(models) + 1 and all(len(line) == len(headers) for line in lines)
