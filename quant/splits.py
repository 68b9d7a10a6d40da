"""Leakage-safe splits on the time axis: purged walk-forward and combinatorial purged CV.

A sample at bar t has a label that looks h bars ahead. Training samples closer than
``embargo`` (>= the longest horizon) bars to any test bar are dropped, so no training label
window overlaps a test sample's period (Lopez de Prado, Advances in Financial ML, ch. 7 and 12).
Splits are defined on the union of timestamps, so all symbols share the same calendar cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Fold:
    """Row indices of one split; ``validation`` is purged from ``train`` like the test set."""

    number: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Span:
    """One walk-forward fold as positions on the bar timeline (all ends inclusive): fitting on
    ``[train_start, fit_end]``, early stopping on ``[val_start, train_end]``, testing on
    ``[test_start, test_end]``. ``test_start - train_end - 1`` bars are purged in between."""

    number: int
    train_start: int
    fit_end: int
    val_start: int
    train_end: int
    test_start: int
    test_end: int


def _time_index(ts: np.ndarray) -> tuple[np.ndarray, int]:
    times, index = np.unique(ts, return_inverse=True)
    return index, len(times)


def _rows(index: np.ndarray, keep_times: np.ndarray) -> np.ndarray:
    return np.flatnonzero(keep_times[index])


class PurgedWalkForward:
    """Test blocks walk forward through the last part of the timeline; each trains on the past.

    ``mode="expanding"`` trains on everything before the block (minus the embargo);
    ``"rolling"`` on the last ``train_bars``. The last ``validation`` share of each training span
    is held out (and purged) for early stopping. Test blocks split the timeline from
    ``first_test`` on, or, with ``test_bars``, are the last ``n_splits`` blocks of that many bars.
    """

    def __init__(
        self,
        n_splits: int = 5,
        horizon: int = 20,
        embargo: int | None = None,
        mode: str = "expanding",
        train_bars: int | None = None,
        first_test: float = 0.5,
        validation: float = 0.15,
        test_bars: int | None = None,
    ) -> None:
        if mode not in ("expanding", "rolling"):
            raise ValueError(f"mode must be 'expanding' or 'rolling', got {mode!r}")
        if mode == "rolling" and not train_bars:
            raise ValueError("mode='rolling' needs train_bars")
        if embargo is not None and embargo < horizon:
            raise ValueError(f"embargo ({embargo}) must be >= the longest horizon ({horizon})")
        if not 0 < first_test < 1 or not 0 <= validation < 1:
            raise ValueError("first_test must be in (0, 1) and validation in [0, 1)")
        if test_bars is not None and test_bars < 1:
            raise ValueError(f"test_bars must be >= 1, got {test_bars}")
        self.n_splits, self.horizon = n_splits, horizon
        self.test_bars = test_bars
        self.embargo = horizon if embargo is None else embargo
        self.mode, self.train_bars = mode, train_bars
        self.first_test, self.validation = first_test, validation

    def spans(self, n_times: int) -> list[Span]:
        """The folds on a timeline of ``n_times`` bars, as bar positions (what ``split`` turns
        into rows; a walk-forward backtest turns them into dates)."""
        if self.test_bars is None:
            start = int(n_times * self.first_test)
            edges = np.linspace(start, n_times, self.n_splits + 1).astype(int)
        else:
            start = n_times - self.n_splits * self.test_bars
            if start < 1:
                raise ValueError(
                    f"{self.n_splits} test blocks of {self.test_bars} bars need more than"
                    f" {self.n_splits * self.test_bars} bars, the timeline has {n_times}"
                )
            edges = start + self.test_bars * np.arange(self.n_splits + 1)
        out = []
        for k, (a, b) in enumerate(itertools.pairwise(edges)):
            train_end = int(a) - 1 - self.embargo  # last training bar (inclusive)
            train_start = 0
            if self.mode == "rolling":
                train_start = max(0, train_end - self.train_bars + 1)
            if train_end < train_start:
                raise ValueError(
                    f"fold {k}: no training data before bar {a} with embargo {self.embargo}; "
                    "use fewer splits or a later first_test"
                )
            n_val = int((train_end - train_start + 1) * self.validation)
            val_start = train_end - n_val + 1
            fit_end = val_start - 1 - self.embargo if n_val else train_end
            out.append(Span(k, train_start, fit_end, val_start, train_end, int(a), int(b) - 1))
        return out

    def split(self, ts: np.ndarray) -> Iterator[Fold]:
        index, n_times = _time_index(ts)
        times = np.arange(n_times)
        for s in self.spans(n_times):
            has_val = s.val_start <= s.train_end
            yield Fold(
                number=s.number,
                train=_rows(index, (times >= s.train_start) & (times <= s.fit_end)),
                validation=_rows(index, (times >= s.val_start) & (times <= s.train_end))
                if has_val
                else np.empty(0, dtype=np.int64),
                test=_rows(index, (times >= s.test_start) & (times <= s.test_end)),
            )


class CombinatorialPurgedCV:
    """Every choice of ``n_test_groups`` of ``n_groups`` time blocks as the test set; training
    uses the rest, purged ``horizon`` bars before each test block and embargoed after it."""

    def __init__(
        self,
        n_groups: int = 6,
        n_test_groups: int = 2,
        horizon: int = 20,
        embargo: int | None = None,
    ) -> None:
        if not 0 < n_test_groups < n_groups:
            raise ValueError("need 0 < n_test_groups < n_groups")
        if embargo is not None and embargo < horizon:
            raise ValueError(f"embargo ({embargo}) must be >= the longest horizon ({horizon})")
        self.n_groups, self.n_test_groups = n_groups, n_test_groups
        self.horizon = horizon
        self.embargo = horizon if embargo is None else embargo

    def split(self, ts: np.ndarray) -> Iterator[Fold]:
        index, n_times = _time_index(ts)
        edges = np.linspace(0, n_times, self.n_groups + 1).astype(int)
        combos = itertools.combinations(range(self.n_groups), self.n_test_groups)
        for k, groups in enumerate(combos):
            test = np.zeros(n_times, dtype=bool)
            banned = np.zeros(n_times, dtype=bool)
            for g in groups:
                a, b = edges[g], edges[g + 1] - 1
                test[a : b + 1] = True
                banned[max(0, a - self.horizon) : min(n_times, b + self.embargo + 1)] = True
            yield Fold(
                number=k,
                train=_rows(index, ~banned),
                validation=np.empty(0, dtype=np.int64),
                test=_rows(index, test),
            )


def before_first_test(ts: np.ndarray, first_test: float, embargo: int) -> np.ndarray:
    """Rows a model may be chosen on when ``PurgedWalkForward(first_test=...)`` reports the rest:
    every bar before its first test block, minus the embargo (a boolean mask)."""
    index, n_times = _time_index(ts)
    return index < int(n_times * first_test) - embargo


def final_split(
    ts: np.ndarray,
    horizon: int,
    validation: float = 0.15,
    embargo: int | None = None,
    holdout: float = 0.0,
) -> Fold:
    """All history for a final model: the last ``validation`` share of bars held out (purged)
    for early stopping, no test set. The last ``holdout`` share of bars is not used at all, and
    validation rows stop ``horizon`` bars before it, so no label the model saw reaches into it:
    those bars can be traded out of sample."""
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    embargo = horizon if embargo is None else max(embargo, horizon)
    index, n_times = _time_index(ts)
    times = np.arange(n_times)
    cut = n_times - int(n_times * holdout)  # first held-out bar
    used = cut - horizon if holdout else n_times  # validation labels end before the cut
    val_start = used - int(used * validation)
    if val_start - embargo <= 0:
        raise ValueError(
            f"{n_times} bars leave nothing to train on with holdout {holdout:.0%} and "
            f"validation {validation:.0%}: use a smaller holdout"
        )
    return Fold(
        number=0,
        train=_rows(index, times < val_start - embargo),
        validation=_rows(index, (times >= val_start) & (times < used)),
        test=np.empty(0, dtype=np.int64),
    )


class WindowDates(Protocol):
    """A walk-forward window as a model source sees it (``trading_runtime.walkforward.Window``)."""

    @property
    def name(self) -> str: ...

    train_start: date
    train_end: date
    test_start: date
