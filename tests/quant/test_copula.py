"""Copula VaR/ES: the t copula fit recovers a known t copula, the simulated VaR of independent
normal assets meets the normal closed form, simulation is seeded and compounds per asset, the
empirical marginals stay inside the data, and skfolio's vine gives the same answer on data it
should model exactly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.distributions.copula.api import StudentTCopula

from quant.copula import (
    copula_var_es,
    fit_t_copula,
    simulate_portfolio,
    t_copula_loglik,
)

CORR = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, 0.2], [0.3, 0.2, 1.0]])
SD = np.array([0.01, 0.02, 0.015])
WEIGHTS = np.array([0.5, 0.3, 0.2])


@pytest.fixture(scope="module")
def t_copula_sample() -> np.ndarray:
    """2,000 draws of a t copula (df 4, CORR) under three different marginals."""
    u = StudentTCopula(CORR, 4, k_dim=3).rvs(2_000, rng=np.random.default_rng(1))
    return np.column_stack([stats.norm.ppf(u[:, 0]) * 0.01, stats.t.ppf(u[:, 1], 3) * 0.02,
                            stats.laplace.ppf(u[:, 2]) * 0.01])  # fmt: skip


@pytest.fixture(scope="module")
def independent_normals() -> np.ndarray:
    return np.random.default_rng(3).normal(0.0002, SD, (2_000, 3))


def test_the_t_copula_fit_recovers_correlation_and_df(t_copula_sample):
    """Kendall's tau estimates each correlation with a standard error of about 0.015 at 2,000
    draws; 0.05 is three of them. The df estimate (4 in truth) ranged 3.3-4.3 over seeds 0-5."""
    model = fit_t_copula(t_copula_sample)
    print(model.corr.round(3), model.df)
    assert np.abs(model.corr - CORR).max() < 0.05
    assert 2.5 < model.df < 6
    assert np.linalg.eigvalsh(model.corr).min() > 0 and np.diag(model.corr).tolist() == [1.0] * 3
    u = stats.rankdata(t_copula_sample, axis=0) / 2_001
    assert t_copula_loglik(u, model.corr, model.df).sum() > t_copula_loglik(u, model.corr, 50).sum()
    nu, _, _ = model.params[1]  # the t(3) marginal
    assert 2 < nu < 4.5


def test_independent_normal_assets_meet_the_normal_closed_form(independent_normals):
    """VaR = z sqrt(sum w_i^2 s_i^2) - w.mean, ES = s phi(z)/(1-level) - w.mean, with the
    sample moments. 50,000 paths: the 99% quantile's sampling error is ~0.6%; the copula's df
    goes to its bound (100: Gaussian) and tau's correlations are ~0."""
    x = independent_normals
    model = fit_t_copula(x)
    assert model.df > 50 and np.abs(model.corr - np.eye(3)).max() < 0.05
    sd = math.sqrt(WEIGHTS**2 @ x.var(axis=0, ddof=1))
    mean = x.mean(axis=0) @ WEIGHTS
    for level in (0.95, 0.99):
        z = stats.norm.ppf(level)
        var, es = z * sd - mean, sd * stats.norm.pdf(z) / (1 - level) - mean
        got = copula_var_es(x, WEIGHTS, level, paths=50_000)
        print(level, var, es, got)
        assert got.var == pytest.approx(var, rel=0.03) and got.es == pytest.approx(es, rel=0.03)
        empirical = copula_var_es(x, WEIGHTS, level, paths=50_000, marginals="empirical")
        assert empirical.var == pytest.approx(var, rel=0.03)


def test_simulation_is_seeded_and_compounds_per_asset(t_copula_sample):
    model = fit_t_copula(t_copula_sample)
    ten = simulate_portfolio(model, WEIGHTS, horizon=10, paths=500, seed=9)
    draws = model.sample(5_000, seed=9).reshape(10, 500, 3)
    assert ten == pytest.approx((np.prod(1 + draws, axis=0) - 1) @ WEIGHTS, abs=1e-15)
    assert np.array_equal(ten, simulate_portfolio(model, WEIGHTS, 10, 500, seed=9))
    assert not np.array_equal(ten, simulate_portfolio(model, WEIGHTS, 10, 500, seed=10))
    again = copula_var_es(t_copula_sample, WEIGHTS, 0.99, 10, paths=5_000)
    assert again == copula_var_es(t_copula_sample, WEIGHTS, 0.99, 10, paths=5_000)
    assert 0 < again.var < again.es


def test_empirical_marginals_stay_inside_the_data(t_copula_sample):
    """Inverting the empirical distribution cannot draw beyond the worst or best bar; the t
    marginals extrapolate past them."""
    x = t_copula_sample
    inside = fit_t_copula(x, marginals="empirical").sample(20_000, seed=1)
    assert (inside >= x.min(axis=0)).all() and (inside <= x.max(axis=0)).all()
    beyond = fit_t_copula(x).sample(20_000, seed=1)
    assert (beyond.min(axis=0) < x.min(axis=0)).any()


def test_weights_align_by_name_and_one_asset_needs_no_copula(independent_normals):
    frame = pd.DataFrame(independent_normals, columns=["A", "B", "C"])
    by_name = copula_var_es(frame, pd.Series({"C": 0.2, "A": 0.5, "B": 0.3}), 0.99, paths=5_000)
    assert by_name == copula_var_es(independent_normals, WEIGHTS, 0.99, paths=5_000)
    single = fit_t_copula(independent_normals[:, :1])
    assert single.corr.tolist() == [[1.0]]
    one = copula_var_es(independent_normals[:, :1], [1.0], 0.99, paths=50_000)
    assert one.var == pytest.approx(stats.norm.ppf(0.99) * 0.01, rel=0.05)


def test_the_vine_agrees_on_independent_normals(independent_normals):
    """skfolio's VineCopula picks Gaussian marginals and independent pairs here: its VaR meets
    the same closed form (looser: its marginals are chosen among four families by AIC)."""
    x = independent_normals[:500]
    sd = math.sqrt(WEIGHTS**2 @ x.var(axis=0, ddof=1))
    var = stats.norm.ppf(0.99) * sd - x.mean(axis=0) @ WEIGHTS
    vine = copula_var_es(x, WEIGHTS, 0.99, kind="vine", paths=20_000)
    print(var, vine)
    assert vine.var == pytest.approx(var, rel=0.04)  # 1.7% off here
    assert vine == copula_var_es(x, WEIGHTS, 0.99, kind="vine", paths=20_000)  # seeded


NOISE = np.random.default_rng(0).normal(size=(30, 2))


@pytest.mark.parametrize(
    ("x", "options", "message"),
    [
        (np.zeros((10, 2)), {}, "bars >= 20"),
        (np.c_[np.linspace(-0.01, 0.01, 30), np.zeros(30)], {}, r"column\(s\) \[1\] never move"),
        (NOISE, {"kind": "gauss"}, "kind must be"),
        (NOISE, {"marginals": "kde"}, "marginals must"),
        (NOISE, {"kind": "vine", "marginals": "empirical"}, "chooses its own"),
    ],
)
def test_bad_inputs_are_refused_clearly(x, options, message):
    with pytest.raises(ValueError, match=message):
        copula_var_es(x, [0.5, 0.5], **options)
    with pytest.raises(ValueError, match="one value per asset"):
        copula_var_es(NOISE, [1.0, 0.0, 0.0])
