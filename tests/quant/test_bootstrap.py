"""The block bootstrap: intervals are reproducible and cover the estimate, and stationary
resampling keeps blocks."""

from __future__ import annotations

import dataclasses
import math

import empyrical as ep
import numpy as np
import pytest

from quant.bootstrap import bootstrap_intervals, resample_indices
from quant.conventions import Conventions


@pytest.mark.parametrize("method", ["stationary", "moving-block"])
def test_bootstrap_intervals_cover_the_estimate_and_are_reproducible(method):
    r = np.random.default_rng(3).normal(0.0006, 0.01, 2500)
    c = Conventions(bootstrap=method, bootstrap_paths=500)
    first, again = bootstrap_intervals(r, c), bootstrap_intervals(r, c)
    assert first == again
    for name, interval in first.items():
        assert interval.low < interval.value < interval.high, name
    assert first["sharpe"].value == pytest.approx(ep.sharpe_ratio(r), abs=1e-8)
    other = bootstrap_intervals(r, dataclasses.replace(c, seed=1))
    assert other["sharpe"].low != first["sharpe"].low
    short = bootstrap_intervals(r[:5], c)
    assert math.isnan(short["sharpe"].low)


def test_stationary_resampling_keeps_blocks():
    idx = resample_indices(1000, 50, 20.0, "stationary", np.random.default_rng(0))
    assert idx.shape == (50, 1000) and idx.min() >= 0 and idx.max() < 1000
    continued = np.mean(np.diff(idx, axis=1) % 1000 == 1)
    assert 0.9 < continued < 0.99  # a new block starts with probability 1/20
    moving = resample_indices(100, 3, 10.0, "moving-block", np.random.default_rng(0))
    assert moving.shape == (3, 100) and (np.diff(moving[:, :10], axis=1) == 1).all()
