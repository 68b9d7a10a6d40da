"""VaR backtests: Kupiec and Christoffersen against their formulas on small hand-made exception
series, and the rolling out-of-sample backtest on simulated returns where the answer is known
(i.i.d. normal: the normal VaR passes; volatility clusters: a constant-volatility VaR's
exceptions cluster and the independence test says so)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant.var_backtest import (
    METHODS,
    backtest_var,
    christoffersen_independence,
    conditional_coverage,
    exceptions,
    kupiec_pof,
    rolling_backtest,
    rolling_var,
)

CLUSTERED = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]  # n00=5 n01=1 n10=1 n11=2
APART = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]  # n00=5 n01=2 n10=2 n11=0


def test_kupiec_by_hand():
    """n=10, x=2, p=0.1, p^=0.2: LR = -2 [8 ln .9 + 2 ln .1 - 8 ln .8 - 2 ln .2]
    = -2 [8 ln(9/8) - 2 ln 2] = 0.888060; chi2(1) p = 0.346004."""
    k = kupiec_pof([0, 0, 1, 0, 0, 0, 1, 0, 0, 0], 0.90)
    assert (k.observations, k.exceptions, k.rate) == (10, 2, 0.2)
    assert k.statistic == pytest.approx(-2 * (8 * math.log(9 / 8) - 2 * math.log(2)), abs=1e-12)
    assert k.statistic == pytest.approx(0.888060, abs=1e-6)
    assert k.p_value == pytest.approx(0.346004, abs=1e-6)


def test_kupiec_edge_cases_use_zero_log_zero():
    """No exception in 250 bars at 99%: LR = -2 * 250 ln .99 = 5.025168 (p 0.0250, rejects:
    the VaR is too cautious); all 4 of 4 at 95%: LR = -2 * 4 ln .05 = 23.965858; the expected
    count exactly: LR 0, p 1."""
    none = kupiec_pof(np.zeros(250, bool), 0.99)
    assert none.statistic == pytest.approx(5.025168, abs=1e-6)
    assert none.p_value == pytest.approx(0.024982, abs=1e-6)
    every = kupiec_pof([True] * 4, 0.95)
    assert every.statistic == pytest.approx(-8 * math.log(0.05), abs=1e-12)
    exact = kupiec_pof([1] + [0] * 19, 0.95)
    assert (exact.statistic, exact.p_value) == (0.0, 1.0)


def test_christoffersen_by_hand():
    """CLUSTERED: pi0 = 1/6, pi1 = 2/3, pi = 3/9. LR = -2 [6 ln(2/3) + 3 ln(1/3) - 5 ln(5/6)
    - ln(1/6) - ln(1/3) - 2 ln(2/3)] = 2.231436; chi2(1) p = 0.135228."""
    c = christoffersen_independence(CLUSTERED)
    assert (c.n00, c.n01, c.n10, c.n11) == (5, 1, 1, 2)
    ln = math.log
    lr = -2 * (6 * ln(2 / 3) + 3 * ln(1 / 3) - 5 * ln(5 / 6) - ln(1 / 6) - ln(1 / 3)
               - 2 * ln(2 / 3))  # fmt: skip
    assert c.statistic == pytest.approx(lr, abs=1e-12)
    assert c.statistic == pytest.approx(2.231436, abs=1e-6)
    assert c.p_value == pytest.approx(0.135228, abs=1e-6)


def test_christoffersen_edge_cases():
    """APART has n11 = 0: pi1 = 0, 0 ln 0 = 0, so LR = -2 [7 ln(7/9) + 2 ln(2/9) - 5 ln(5/7)
    - 2 ln(2/7)] = 1.158937. No exception, or nothing but exceptions: LR 0, p 1. Evenly
    spread exceptions (pi0 = pi1) are independent: LR 0."""
    c = christoffersen_independence(APART)
    assert (c.n00, c.n01, c.n10, c.n11) == (5, 2, 2, 0)
    ln = math.log
    expected = -2 * (7 * ln(7 / 9) + 2 * ln(2 / 9) - 5 * ln(5 / 7) - 2 * ln(2 / 7))
    assert c.statistic == pytest.approx(expected, abs=1e-12)
    assert c.statistic == pytest.approx(1.158937, abs=1e-6)
    for flat in ([0] * 30, [1] * 30):
        assert christoffersen_independence(flat).statistic == 0.0
        assert christoffersen_independence(flat).p_value == 1.0
    even = christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])  # pi0 = pi1 = 1/3
    assert even.statistic == pytest.approx(0.0, abs=1e-12)


def test_conditional_coverage_is_the_sum_with_two_degrees_of_freedom():
    """CLUSTERED at 90%: LR_pof = -2 [7 ln(9/7) - 3 ln 3] = 3.073272, LR_ind = 2.231436,
    LR_cc = 5.304707; chi2(2) survival is exp(-x/2): p = 0.070485."""
    cc = conditional_coverage(CLUSTERED, 0.90)
    assert cc.kupiec.statistic == pytest.approx(
        -2 * (7 * math.log(9 / 7) - 3 * math.log(3)), abs=1e-12
    )
    assert cc.statistic == pytest.approx(cc.kupiec.statistic + cc.independence.statistic)
    assert cc.statistic == pytest.approx(5.304707, abs=1e-6)
    assert cc.p_value == pytest.approx(math.exp(-cc.statistic / 2), abs=1e-12)
    assert cc.p_value == pytest.approx(0.070485, abs=1e-6)


def test_an_exception_is_a_loss_beyond_the_var():
    returns = np.array([-0.03, -0.02, 0.01, -0.021])
    assert exceptions(returns, 0.02).tolist() == [True, False, False, True]  # -0.02: not beyond
    assert exceptions(returns, [0.04, 0.01, 0.0, 0.03]).tolist() == [False, True, False, False]
    test = backtest_var(returns, 0.02, 0.5)
    assert test.kupiec.exceptions == 2 and test.row()["expected"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="NaN"):
        exceptions(returns, [0.02, np.nan, 0.02, 0.02])
    with pytest.raises(ValueError, match="0/1"):
        kupiec_pof([0, 2, 1], 0.99)


# --- the rolling backtest -------------------------------------------------------------------


def garch_returns(n: int, seed: int) -> np.ndarray:
    """Two assets with a common GARCH(1,1) variance (omega 2e-6, alpha 0.12, beta 0.86:
    persistent volatility clusters) and correlated normal shocks (rho 0.5)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.12, 0.86
    shocks = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], n)
    variance, out = omega / (1 - alpha - beta), np.empty((n, 2))
    for t in range(n):
        out[t] = math.sqrt(variance) * shocks[t]
        variance = omega + alpha * out[t].mean() ** 2 / 0.75 + beta * variance  # var(mean) 0.75
    return out


def test_the_normal_var_passes_on_iid_normal_returns():
    """1,000 out-of-sample bars (10 expected exceptions at 99%), two i.i.d. normal assets."""
    rng = np.random.default_rng(21)
    x = rng.normal(0.0003, [0.01, 0.015], (1_250, 2))
    table = rolling_backtest(x, [0.5, 0.5], (0.99, 0.95), methods=("parametric",))
    print(table.to_string())
    assert table["observations"].tolist() == [1_000, 1_000]
    for row in table.itertuples():
        assert row.kupiec_p > 0.05 and row.independence_p > 0.05 and row.cc_p > 0.05, row


def test_independence_rejects_a_constant_volatility_var_on_clustered_returns():
    """2,000 out-of-sample bars (100 expected exceptions at 95%): enough power that seeds 0-5
    all reject at 95% (p <= 0.018 for both methods); 1,000 bars rejected for only half."""
    x = garch_returns(2_250, seed=4)
    table = rolling_backtest(x, [0.5, 0.5], (0.95, 0.99), methods=("parametric", "historical"))
    print(table.to_string())
    at95 = table[table["level"] == 0.95].set_index("method")
    assert (at95["independence_p"] < 0.05).all()  # the exceptions come in clusters
    assert (at95["cc_p"] < 0.05).all()
    assert (at95["kupiec_p"] > 0.05).all()  # here (p 0.30, 0.42) while the count looks right
    again = rolling_backtest(x, [0.5, 0.5], (0.95, 0.99), methods=("parametric", "historical"))
    pd.testing.assert_frame_equal(table, again)  # deterministic


def test_every_method_forecasts_from_the_past_only():
    """Forecasts for the bars before k are unchanged when the bars from k on are replaced:
    each forecast uses the window before its refit bar."""
    rng = np.random.default_rng(8)
    x = pd.DataFrame(rng.standard_t(5, (400, 3)) * 0.01, columns=["A", "B", "C"])
    weights = pd.Series({"C": 0.2, "A": 0.5, "B": 0.3})
    options = {"window": 250, "refit": 21, "last": 63, "paths": 1_000}
    realized, forecasts, errors = rolling_var(x, weights, (0.99, 0.95), **options)
    assert errors == {} and list(realized.index) == list(range(337, 400))
    assert realized.to_numpy() == pytest.approx(x.iloc[337:].to_numpy() @ [0.5, 0.3, 0.2])
    table = forecasts[0.99]
    assert list(table.columns) == list(METHODS) and table.notna().all().all()
    assert (forecasts[0.99] > forecasts[0.95]).all().all()  # a higher level, a larger loss
    assert table.iloc[:21].nunique().eq(1).all()  # one refit serves 21 bars
    future = x.copy()
    future.iloc[358:] *= 5  # k = 358 = 337 + 21: the second refit block
    _, moved, _ = rolling_var(future, weights, (0.99, 0.95), **options)
    pd.testing.assert_frame_equal(moved[0.99].iloc[:42], table.iloc[:42])
    assert not moved[0.99].iloc[42:].equals(table.iloc[42:])  # the third refit sees it
    report = rolling_backtest(x, weights, (0.99, 0.95), **options)
    assert len(report) == 2 * len(METHODS) and "note" not in report
    assert report["observations"].eq(63).all()


def test_a_method_that_cannot_forecast_leaves_a_note():
    x = np.random.default_rng(2).normal(0, 0.01, (300, 2))
    x[:, 1] = 0.0  # an asset that never moves: no copula
    table = rolling_backtest(x, [0.5, 0.5], methods=("historical", "copula"))
    copula = table.set_index("method").loc["copula"]
    assert "never move" in copula["note"] and math.isnan(copula["kupiec_p"])
    assert table.set_index("method").loc["historical", "observations"] == 50
    with pytest.raises(ValueError, match="none to test"):
        rolling_backtest(x[:250], [0.5, 0.5])
    with pytest.raises(ValueError, match="unknown methods"):
        rolling_backtest(x, [0.5, 0.5], methods=("kde",))
