"""VaR/ES of a return series by four methods against reference definitions. Historical VaR/ES
follow empyrical (value_at_risk / conditional_value_at_risk at cutoff 1 - level, negated) and
are checked against it to 1e-8."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant.risk import expected_shortfall, risk_measures, value_at_risk


@pytest.fixture(scope="module")
def normal_returns() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0004, 0.012, 2_000)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_historical_matches_empyrical(normal_returns, level):
    r = normal_returns
    assert value_at_risk(r, level) == pytest.approx(
        -empyrical.value_at_risk(r, 1 - level), abs=1e-8
    )
    assert expected_shortfall(r, level) == pytest.approx(
        -empyrical.conditional_value_at_risk(r, 1 - level), abs=1e-8
    )
    for n in (2, 3, 17, 252):  # the interpolation and tail size at small samples too
        assert risk_measures(r[:n], level) == pytest.approx(
            [-empyrical.value_at_risk(r[:n], 1 - level),
             -empyrical.conditional_value_at_risk(r[:n], 1 - level)], abs=1e-12
        )  # fmt: skip
    ten = pd.Series(r).add(1).rolling(10).apply(np.prod, raw=True).sub(1).dropna().to_numpy()
    assert value_at_risk(r, level, 10) == pytest.approx(
        -empyrical.value_at_risk(ten, 1 - level), abs=1e-8
    )
    assert expected_shortfall(r, level, 10) == pytest.approx(
        -empyrical.conditional_value_at_risk(ten, 1 - level), abs=1e-8
    )


@pytest.mark.parametrize(("level", "horizon"), [(0.95, 1), (0.99, 10)])
def test_parametric_is_the_normal_closed_form(normal_returns, level, horizon):
    r = normal_returns
    mu, sd = r.mean() * horizon, r.std(ddof=1) * math.sqrt(horizon)
    z = stats.norm.ppf(level)
    var, es = risk_measures(r, level, horizon, "parametric")
    assert var == pytest.approx(-mu + sd * z, abs=1e-12)
    assert es == pytest.approx(-mu + sd * stats.norm.pdf(z) / (1 - level), abs=1e-12)


def test_cornish_fisher_widens_a_fat_left_tail():
    r = stats.t.rvs(3, scale=0.01, size=3_000, random_state=np.random.default_rng(3))
    plain = risk_measures(r, 0.99, method="parametric")
    adjusted = risk_measures(r, 0.99, method="parametric", cornish_fisher=True)
    assert adjusted.var > plain.var and adjusted.es > plain.es
    assert adjusted.es > adjusted.var


@pytest.mark.parametrize(
    ("level", "horizon", "tolerance"), [(0.95, 1, 0.02), (0.99, 1, 0.02), (0.99, 10, 0.06)]
)
def test_monte_carlo_converges_to_parametric_on_normal_data(
    normal_returns, level, horizon, tolerance
):
    """200,000 paths: the 99% quantile's standard error is ~0.5%. 10-bar paths compound (a
    right-skewed return, a thinner loss tail: ES ~4% below); the square-root-of-time closed
    form does not, hence the wider relative tolerance there."""
    exact = risk_measures(normal_returns, level, horizon, "parametric")
    simulated = risk_measures(normal_returns, level, horizon, "monte-carlo", paths=200_000)
    assert simulated.var == pytest.approx(exact.var, rel=tolerance)
    assert simulated.es == pytest.approx(exact.es, rel=tolerance)
    again = risk_measures(normal_returns, level, horizon, "monte-carlo", paths=200_000)
    assert again == simulated  # seeded


def test_evt_beats_the_normal_on_fat_tails():
    df, scale = 3, 0.01
    r = stats.t.rvs(df, scale=scale, size=5_000, random_state=np.random.default_rng(11))
    true_var = -stats.t.ppf(0.01, df, scale=scale)
    evt = value_at_risk(r, 0.99, method="evt")
    normal = value_at_risk(r, 0.99, method="parametric")
    assert abs(evt - true_var) < abs(normal - true_var)
    assert abs(evt / true_var - 1) < 0.1
    assert expected_shortfall(r, 0.99, method="evt") > evt
    assert value_at_risk(r, 0.99, 10, "evt") == pytest.approx(evt * math.sqrt(10))


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((0.0,), {}, "level must be in"),
        ((1.0,), {}, "level must be in"),
        ((0.99, 0), {}, "horizon"),
        ((0.99, 1, "kde"), {}, "method must be one of"),
        ((0.99, 1, "parametric"), {"paths": 10}, "has no option paths"),
        ((0.99, 1, "evt"), {"min_exceedances": 500}, "EVT needs at least 500"),
    ],
)
def test_bad_inputs_are_refused_clearly(normal_returns, args, options, message):
    with pytest.raises(ValueError, match=message):
        value_at_risk(normal_returns, *args, **options)


def test_nans_are_refused(normal_returns):
    with pytest.raises(ValueError, match="1 NaN"):
        value_at_risk(np.append(normal_returns, np.nan))
