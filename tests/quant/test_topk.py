"""The top-k portfolio on hand-made forecasts whose picks, drift, costs and returns are worked
out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant.conventions import Conventions
from quant.topk import portfolio_returns, top_k_report, top_k_weights

BARS = pd.date_range("2020-01-01", periods=3, freq="D")
SYMBOLS = ["A", "B", "C", "D"]


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, index=BARS[: len(rows)], columns=SYMBOLS, dtype=float)


def test_the_k_highest_forecasts_get_equal_weight_ties_share_and_nan_is_not_bought():
    scores = frame([[0.3, 0.1, 0.2, -1.0], [np.nan, 0.1, 0.1, 0.0], [5, 5, 5, 5]])
    w = top_k_weights(scores, k=2)
    assert w.iloc[0].tolist() == [0.5, 0.0, 0.5, 0.0]
    assert w.iloc[1].tolist() == [0.0, 0.5, 0.5, 0.0]  # A has no forecast
    assert w.iloc[2].tolist() == [0.25] * 4  # a forecast that ranks nothing buys the universe
    tie = top_k_weights(frame([[0.3, 0.1, 0.1, 0.1]]), k=2)
    assert tie.iloc[0].tolist() == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6])


def test_between_rebalances_the_weights_are_held():
    w = top_k_weights(frame([[1, 2, 3, 4], [4, 3, 2, 1], [4, 3, 2, 1]]), k=1, every=2)
    assert w.iloc[0].tolist() == [0, 0, 0, 1]
    assert w.iloc[1].isna().all()
    assert w.iloc[2].tolist() == [1, 0, 0, 0]


def test_returns_drift_and_costs_by_hand():
    targets = frame([[0.5, 0.5, 0, 0], [np.nan] * 4, [0, 0, 0.5, 0.5]])
    moves = frame([[0.10, -0.10, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.02, 0.0, 0.0, 0.04]])
    out = portfolio_returns(targets, moves, cost_bps=10)
    # bar 0: buy in (turnover 1), earn 0.5 * 0.1 - 0.5 * 0.1 = 0; weights drift to 0.55 / 0.45
    assert out["gross"].iloc[0] == pytest.approx(0.0)
    assert out["turnover"].iloc[0] == pytest.approx(1.0)
    assert out["net"].iloc[0] == pytest.approx(-0.001)
    # bar 1: held, nothing traded
    assert out["turnover"].iloc[1] == pytest.approx(0.0)
    # bar 2: sell 0.55 A and 0.45 B, buy 0.5 C and 0.5 D: turnover 2; earn 0.5 * 0.04
    assert out["turnover"].iloc[2] == pytest.approx(2.0)
    assert out["gross"].iloc[2] == pytest.approx(0.02)
    assert out["net"].iloc[2] == pytest.approx(0.02 - 2 * 0.001)


def test_a_perfect_ranking_beats_the_equal_weight_universe_and_a_constant_one_is_it():
    rng = np.random.default_rng(0)
    index = pd.date_range("2020-01-01", periods=300, freq="B")
    moves = pd.DataFrame(rng.normal(0, 0.01, (300, 10)), index=index,
                         columns=[f"S{i}" for i in range(10)])  # fmt: skip
    c = Conventions(bootstrap_paths=200)
    perfect = top_k_report(moves, moves, k=3, cost_bps=5, conventions=c)
    assert perfect["information_ratio"].low > 0
    assert perfect["portfolio"]["annual_return"].value > perfect["benchmark"]["annual_return"].value
    constant = top_k_report(moves * 0, moves, k=3, cost_bps=5, conventions=c)
    assert constant["active_return"] == pytest.approx(0.0)
    assert math.isnan(constant["information_ratio"].value)  # no active return, no ratio
    noise = top_k_report(moves.shift(-1).fillna(0), moves, k=3, cost_bps=5, conventions=c)
    assert noise["information_ratio"].low < 0  # costs and no skill: the interval reaches below 0
