"""Pair selection by cointegration on hand-made prices: the cointegrated pair is found with its
hedge ratio, unrelated walks are not paired, and the leg weights follow the ratio."""

from __future__ import annotations

import numpy as np
import pytest

from quant.pairs import Pair, leg_weights, select_pairs
from tests.support.cointegrated import cointegrated_logs


@pytest.mark.parametrize("method", ["engle-granger", "johansen"])
def test_the_cointegrated_pair_is_found_with_its_hedge_ratio(method):
    pairs = select_pairs(cointegrated_logs(400), method=method)
    assert [(p.first, p.second) for p in pairs] == [(0, 1)]  # never the unrelated walk (2)
    assert pairs[0].hedge_ratio == pytest.approx(1.5, abs=0.2)
    assert pairs[0].score < 1.0  # passes: a p-value under 0.05, or trace above its critical
    assert pairs[0].sd > 0


def test_independent_random_walks_are_paired_about_as_often_as_the_significance_allows():
    # both orderings are tested, so the false-positive rate may reach about twice 5%
    found = sum(bool(select_pairs(cointegrated_logs(250, seed=s)[:, 1:])) for s in range(100))
    assert found <= 15


def test_the_spread_and_its_zscore_follow_the_fitted_line():
    pair = Pair(0, 1, hedge_ratio=2.0, intercept=1.0, mean=0.5, sd=0.25, score=0.01)
    row = np.array([10.0, 4.0, 99.0])
    assert pair.spread(row) == pytest.approx(10 - 2 * 4 - 1)  # 1.0
    assert pair.zscore(row) == pytest.approx((1.0 - 0.5) / 0.25)


def test_a_symbol_with_a_missing_bar_is_no_candidate():
    logs = cointegrated_logs(400)
    logs[123, 0] = np.nan
    assert all(0 not in (p.first, p.second) for p in select_pairs(logs))


def test_no_symbol_is_in_two_pairs():
    logs = cointegrated_logs(400)
    twin = logs[:, [0]] + np.random.default_rng(1).normal(0, 0.005, (400, 1))
    pairs = select_pairs(np.column_stack([logs, twin]), max_pairs=3)
    symbols = [s for p in pairs for s in (p.first, p.second)]
    assert pairs and len(symbols) == len(set(symbols))


def test_leg_weights_put_the_hedge_ratio_of_money_in_the_second_leg():
    pair = Pair(0, 1, hedge_ratio=1.5, intercept=0.0, mean=0.0, sd=1.0, score=0.0)
    assert leg_weights(pair, 1) == pytest.approx((1 / 1.5, -1.0))
    assert leg_weights(pair, -1) == pytest.approx((-1 / 1.5, 1.0))
    half = Pair(0, 1, hedge_ratio=0.5, intercept=0.0, mean=0.0, sd=1.0, score=0.0)
    assert leg_weights(half, 1) == pytest.approx((1.0, -0.5))
    assert leg_weights(half, 0) == (0.0, -0.0)


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(ValueError, match="bars >= 30"):
        select_pairs(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="unknown cointegration method"):
        select_pairs(cointegrated_logs(100), method="kalman")
    with pytest.raises(ValueError, match="significance"):
        select_pairs(cointegrated_logs(100), significance=1.5)
