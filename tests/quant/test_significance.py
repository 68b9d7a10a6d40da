"""Promotion statistics: the deflated Sharpe ratio reproduces the paper's example, the
Diebold-Mariano test holds its size on overlapping losses and finds a real edge, and CSCV tells an
overfit search from a skilled one."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from quant.significance import (
    deflated_sharpe_ratio,
    diebold_mariano,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)


def test_deflated_sharpe_matches_bailey_lopez_de_prado_example():
    """Bailey & Lopez de Prado (2014), numerical example: 100 trials, annualized variance of
    their Sharpe ratios 0.5, best annualized Sharpe 2.5 over 1,250 daily returns, skewness -3,
    kurtosis 10: SR0 = 0.1132 per day and DSR = 0.9004."""
    benchmark = expected_max_sharpe(100, 0.5 / 250)
    assert benchmark == pytest.approx(0.1132, abs=5e-4)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), benchmark, 1250, skew=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_deflated_sharpe_of_one_trial_is_the_t_test_and_falls_with_trials():
    returns = np.random.default_rng(0).normal(0.0008, 0.01, 1000)
    one = deflated_sharpe_ratio(returns, n_trials=1)
    t = stats.ttest_1samp(returns, 0.0, alternative="greater")
    assert one.benchmark == 0 and one.probability == pytest.approx(1 - t.pvalue, abs=0.01)
    many = [deflated_sharpe_ratio(returns, n).probability for n in (1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(many))
    with pytest.raises(ValueError, match="at least 3 returns"):
        deflated_sharpe_ratio(returns[:2], 5)


def _ma_losses(rng, n: int, h: int, edge: float) -> tuple[np.ndarray, np.ndarray]:
    """Loss pairs whose difference is an MA(h-1) process (overlapping h-bar labels)."""
    shocks = rng.normal(size=n + h - 1)
    diff = np.convolve(shocks, np.ones(h), mode="valid") + edge
    champion = rng.normal(size=n) ** 2 + 2
    return champion, champion - diff


def test_diebold_mariano_holds_its_size_on_overlapping_losses():
    h, n, trials = 5, 400, 300
    rng = np.random.default_rng(1)
    with_hac = without = 0
    for _ in range(trials):
        champion, challenger = _ma_losses(rng, n, h, edge=0.0)
        with_hac += diebold_mariano(champion, challenger, horizon=h).p_value < 0.05
        without += diebold_mariano(champion, challenger, horizon=1).p_value < 0.05
    assert 0.02 <= with_hac / trials <= 0.09  # nominal 5%
    assert without / trials > 0.12  # ignoring the overlap finds edges that are not there


def test_diebold_mariano_finds_a_real_edge_and_refuses_bad_input():
    rng = np.random.default_rng(2)
    champion, challenger = _ma_losses(rng, 1000, 5, edge=1.0)
    better = diebold_mariano(champion, challenger, horizon=5)
    assert better.p_value < 0.01 and better.statistic > 0 and better.mean_loss_difference > 0
    worse = diebold_mariano(challenger, champion, horizon=5)
    assert worse.p_value > 0.99
    same = diebold_mariano(champion, champion)
    assert same.statistic == 0 and same.p_value == 0.5
    with pytest.raises(ValueError, match="same bars"):
        diebold_mariano(champion, challenger[:-1])


def test_backtest_overfitting_tells_noise_from_skill():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.01, size=(1000, 20))
    assert 0.3 <= probability_of_backtest_overfitting(noise).probability <= 0.8
    skilled = noise.copy()
    skilled[:, 7] += 0.003  # one configuration with a real edge
    result = probability_of_backtest_overfitting(skilled)
    assert result.probability < 0.05 and result.n_splits == math.comb(10, 5)
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(noise, n_blocks=5)
