"""Adaptive combiners of the ensemble's members: weighted voting on recent out-of-sample errors
and per-regime model selection. Both are walk-forward by construction: the weights used at bar t
come only from the members' errors on rows whose label was known at t (a forward return of h
bars is known h bars later), over the last ``lookback`` bars, so no weight is ever fitted on a
bar it is judged on. The stacked combination is :class:`training.ensemble.StackedEnsemble`; the
weights of a vote or a selection as of the training end are registered and served as one
(``training.ensemble.frozen``), frozen until the next ensemble run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data import TrainingData

REGIMES = ("pooled", "low_vol", "high_vol")  # the weights' layout, as StackedEnsemble's


@dataclass
class AdaptiveEnsemble:
    """Weights at every bar from the members' squared errors in a trailing window of known
    labels; subclasses say how errors become weights. The regime of a row is its
    ``regime_feature`` above (high) or below the ``threshold`` given to :meth:`fit`; with fewer
    than ``min_rows`` known errors (all members scored) a regime falls back to the pooled
    errors, and with fewer than that pooled the members get equal weights."""

    members: tuple[str, ...]
    horizons: tuple[int, ...]
    lookback: int = 63
    min_rows: int = 20
    regime_feature: str = "hv_20"

    def fit(
        self,
        predictions: np.ndarray,
        regime: np.ndarray,
        returns: np.ndarray,
        known: np.ndarray,
        threshold: float,
    ) -> AdaptiveEnsemble:
        """predictions (n, members, horizons), regime (n,), returns (n, horizons) and ``known``
        (n, horizons): the bar number (on the shared timeline) from which each row's label of
        each horizon is known. ``threshold`` splits the regimes; fix it from data before the
        first bar that is combined, so that it too sees no later bar."""
        if self.lookback < 1:
            raise ValueError(f"lookback must be at least one bar, got {self.lookback}")
        self.threshold_ = float(threshold)
        high = (regime > self.threshold_).astype(int)
        error = (predictions - returns[:, None, :]) ** 2  # (n, members, horizons)
        scored = np.isfinite(error).all(axis=1)  # (n, horizons)
        size = int(known[scored].max()) + 2 if scored.any() else 1
        sums = np.zeros((size, 2, len(self.horizons), len(self.members)))
        counts = np.zeros((size, 2, len(self.horizons)))
        for i in range(len(self.horizons)):
            rows = scored[:, i]
            # row r counts from bar known[r] on: cumulative index known[r] + 1
            at = (known[rows, i] + 1, high[rows], i)
            np.add.at(sums, at, error[rows, :, i])
            np.add.at(counts, at, 1.0)
        self.sums_, self.counts_ = sums.cumsum(axis=0), counts.cumsum(axis=0)
        return self

    def weights_at(self, steps: np.ndarray) -> np.ndarray:
        """(len(steps), 3, horizons, members): the weights at each bar number, per regime in
        :data:`REGIMES` order, from the errors known at that bar within the lookback."""
        last = len(self.sums_) - 1
        end = np.clip(np.asarray(steps) + 1, 0, last)  # labels known at bar t: index <= t + 1
        begin = np.clip(end - self.lookback, 0, last)
        sums = self.sums_[end] - self.sums_[begin]  # (t, 2, horizons, members)
        counts = self.counts_[end] - self.counts_[begin]  # (t, 2, horizons)
        return self._weights(sums, counts)

    def combine(self, predictions: np.ndarray, regime: np.ndarray, steps: np.ndarray):
        """Each row's combination with the weights of its bar and regime."""
        which = np.where(regime > self.threshold_, 2, 1)
        weights = self.weights_at(steps)[np.arange(len(steps)), which]  # (n, horizons, members)
        return np.einsum("nmh,nhm->nh", predictions, weights).astype(np.float32)

    def _weights(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _by_regime(self, sums: np.ndarray, counts: np.ndarray, rule) -> np.ndarray:
        """``rule(mse (t, horizons, members)) -> weights`` per regime: pooled, then each regime
        on its own errors where it has ``min_rows`` of them (else the pooled weights); equal
        weights where fewer are known."""
        equal = 1.0 / len(self.members)
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled_counts = counts.sum(axis=1)
            pooled = rule(sums.sum(axis=1) / pooled_counts[..., None])
            pooled = np.where((pooled_counts >= self.min_rows)[..., None], pooled, equal)
            out = [pooled]
            for r in (0, 1):
                own = rule(sums[:, r] / counts[:, r, :, None])
                out.append(np.where((counts[:, r] >= self.min_rows)[..., None], own, pooled))
        return np.stack(out, axis=1)


@dataclass
class VotingEnsemble(AdaptiveEnsemble):
    """Weights proportional to the inverse mean squared error to the power ``power`` (1: plain
    inverse-MSE; higher concentrates on the best member), one set for all regimes."""

    power: float = 1.0

    def _weights(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        def rule(mse: np.ndarray) -> np.ndarray:
            score = (mse + 1e-12) ** -self.power
            return score / score.sum(axis=-1, keepdims=True)

        pooled = self._by_regime(sums, counts, rule)[:, :1]
        return np.repeat(pooled, 3, axis=1)


@dataclass
class SelectionEnsemble(AdaptiveEnsemble):
    """Per regime, all the weight on the member with the lowest recent mean squared error in
    that regime (dynamic model selection)."""

    def _weights(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        def rule(mse: np.ndarray) -> np.ndarray:
            best = np.argmin(np.where(np.isnan(mse), np.inf, mse), axis=-1)
            return np.eye(len(self.members))[best]

        return self._by_regime(sums, counts, rule)


ADAPTIVE = {"vote": VotingEnsemble, "select": SelectionEnsemble}


def fit_out_of_fold(
    kind: str,
    members: tuple[str, ...],
    data: TrainingData,
    rows: np.ndarray,
    predictions: np.ndarray,
    regime_feature: str,
    lookback: int,
) -> AdaptiveEnsemble:
    """The ``kind`` combiner (vote or select) over the members' out-of-fold ``predictions`` on
    ``rows`` of ``data``: each label known from the bar it ends on (its symbol's bars, on the
    shared timeline), the regimes split at the median of ``regime_feature`` over the bars
    before the first out-of-fold bar (training data only)."""
    times = np.unique(data.ts)
    known = np.stack(
        [np.searchsorted(times, data.label_ends(rows, h)) for h in data.horizons], axis=1
    )
    column = data.feature_names.index(regime_feature)
    before = data.ts < data.ts[rows].min()
    threshold = float(np.nanmedian(data.features[before, column])) if before.any() else 0.0
    regime = data.features[rows, column]
    combiner = ADAPTIVE[kind](
        members, tuple(data.horizons), lookback, regime_feature=regime_feature
    )
    return combiner.fit(predictions, regime, data.returns[rows], known, threshold)
