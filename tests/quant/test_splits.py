"""Splits: no training sample's label window overlaps a test (or validation) sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.splits import CombinatorialPurgedCV, PurgedWalkForward, final_split


def panel(n_times: int, n_symbols: int, seed: int) -> np.ndarray:
    """Timestamps of a panel with ragged histories (symbols start at different bars)."""
    rng = np.random.default_rng(seed)
    times = np.arange(n_times).astype("datetime64[D]")
    starts = rng.integers(0, n_times // 3, n_symbols)
    return np.concatenate([times[s:] for s in starts])


def assert_separated(ts: np.ndarray, train: np.ndarray, other: np.ndarray, horizon: int) -> None:
    """Every training bar is more than ``horizon`` bars from every held-out bar, so its label
    window (t, t + horizon] cannot reach a held-out bar nor share bars with its label window."""
    if not len(train) or not len(other):
        return
    index = np.unique(ts, return_inverse=True)[1]
    tr, ot = np.unique(index[train]), np.unique(index[other])
    pos = np.searchsorted(ot, tr)
    nearest = np.minimum(
        np.abs(tr - ot[np.clip(pos, 0, len(ot) - 1)]),
        np.abs(tr - ot[np.clip(pos - 1, 0, len(ot) - 1)]),
    )
    assert nearest.min() > horizon


@settings(max_examples=60, deadline=None)
@given(
    n_times=st.integers(300, 1500),
    n_symbols=st.integers(1, 6),
    n_splits=st.integers(1, 6),
    horizon=st.integers(1, 30),
    extra=st.integers(0, 10),
    rolling=st.booleans(),
    seed=st.integers(0, 100),
)
def test_walk_forward_is_purged(n_times, n_symbols, n_splits, horizon, extra, rolling, seed):
    ts = panel(n_times, n_symbols, seed)
    splitter = PurgedWalkForward(
        n_splits=n_splits,
        horizon=horizon,
        embargo=horizon + extra,
        mode="rolling" if rolling else "expanding",
        train_bars=200 if rolling else None,
    )
    folds = list(splitter.split(ts))
    assert len(folds) == n_splits
    tested = np.concatenate([f.test for f in folds])
    assert len(np.unique(tested)) == len(tested)  # test blocks do not overlap
    for fold in folds:
        assert len(fold.train) and len(fold.test)
        assert ts[fold.train].max() < ts[fold.test].min()  # only the past trains
        assert_separated(ts, fold.train, fold.test, horizon)
        assert_separated(ts, fold.train, fold.validation, horizon)
        assert not set(fold.train) & set(fold.validation)


@settings(max_examples=40, deadline=None)
@given(
    n_times=st.integers(200, 1200),
    n_groups=st.integers(3, 8),
    horizon=st.integers(1, 20),
    seed=st.integers(0, 100),
    data=st.data(),
)
def test_cpcv_is_purged_both_sides(n_times, n_groups, horizon, seed, data):
    k = data.draw(st.integers(1, n_groups - 1))
    ts = panel(n_times, 3, seed)
    folds = list(CombinatorialPurgedCV(n_groups, k, horizon).split(ts))
    from math import comb

    assert len(folds) == comb(n_groups, k)
    for fold in folds:
        assert_separated(ts, fold.train, fold.test, horizon)


def test_embargo_shorter_than_horizon_is_refused():
    with pytest.raises(ValueError, match="embargo"):
        PurgedWalkForward(horizon=20, embargo=5)
    with pytest.raises(ValueError, match="no training data"):
        list(PurgedWalkForward(n_splits=5, horizon=20, first_test=0.01).split(panel(300, 1, 0)))


@settings(max_examples=60, deadline=None)
@given(
    n_times=st.integers(300, 1500),
    n_symbols=st.integers(1, 6),
    horizon=st.integers(1, 20),
    holdout=st.floats(0.05, 0.4),
    seed=st.integers(0, 1000),
)
def test_final_split_sees_no_label_of_the_holdout(n_times, n_symbols, horizon, holdout, seed):
    """The final model's rows (training and early stopping) and their labels all end before
    the held-out bars."""
    ts = panel(n_times, n_symbols, seed)
    fold = final_split(ts, horizon, holdout=holdout)
    times = np.unique(ts)
    held = np.flatnonzero(ts >= times[len(times) - int(len(times) * holdout)])
    assert_separated(ts, fold.train, fold.validation, horizon)
    assert_separated(ts, fold.train, held, horizon)
    assert_separated(ts, fold.validation, held, horizon)
    last_seen = np.searchsorted(times, ts[np.r_[fold.train, fold.validation]].max())
    assert times[last_seen + horizon] < ts[held].min()


def test_a_holdout_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(ValueError, match="smaller holdout"):
        final_split(np.arange(100).astype("datetime64[D]"), 20, holdout=0.7)
