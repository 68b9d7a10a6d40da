"""The stacked combination of the ensemble's members: per horizon and volatility regime,
non-negative least-squares weights on their out-of-fold predictions (``training.ensemble``
nests it so that its own score is out of sample). Its layout of weights (3 regimes, horizons,
members) is also how the adaptive combiners' frozen weights are registered and served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression


@dataclass
class StackedEnsemble:
    """Per horizon and volatility regime, non-negative weights (plus an intercept) on the
    members' predictions, least squares on out-of-fold rows. The regime is the current bar's
    ``regime_feature`` above or below its median on the rows the weights were fitted on; a
    regime with fewer than ``min_regime_rows`` rows uses the pooled weights."""

    members: tuple[str, ...]
    horizons: tuple[int, ...]
    regime_feature: str = "hv_20"
    min_regime_rows: int = 250

    def fit(self, predictions: np.ndarray, regime: np.ndarray, returns: np.ndarray):
        """predictions (n, members, horizons), regime (n,), returns (n, horizons)."""
        n, _, horizons = predictions.shape
        self.threshold_ = float(np.nanmedian(regime)) if n else 0.0
        high = regime > self.threshold_
        self.weights_ = np.zeros((3, horizons, len(self.members)))  # pooled, low, high
        self.intercepts_ = np.zeros((3, horizons))
        for h in range(horizons):
            ok = np.isfinite(returns[:, h]) & np.isfinite(predictions[:, :, h]).all(axis=1)
            for r, rows in enumerate((ok, ok & ~high, ok & high)):
                if r and rows.sum() < self.min_regime_rows:
                    rows = ok
                if rows.sum() < len(self.members) + 1:  # nothing to learn from: equal weights
                    self.weights_[r, h] = 1.0 / len(self.members)
                    continue
                meta = LinearRegression(positive=True).fit(
                    predictions[rows, :, h], returns[rows, h]
                )
                self.weights_[r, h], self.intercepts_[r, h] = meta.coef_, meta.intercept_
        return self

    def combine(self, predictions: np.ndarray, regime: np.ndarray) -> np.ndarray:
        which = np.where(regime > self.threshold_, 2, 1)
        weights = self.weights_[which]  # (n, horizons, members)
        return (np.einsum("nmh,nhm->nh", predictions, weights) + self.intercepts_[which]).astype(
            np.float32
        )

    def weights(self) -> dict[str, Any]:
        """Readable weights: regime -> horizon -> member -> weight."""
        names = ("pooled", "low_vol", "high_vol")
        return {
            "threshold": self.threshold_,
            **{
                name: {
                    f"h{h}": dict(zip(self.members, map(float, self.weights_[r, i]), strict=True))
                    | {"intercept": float(self.intercepts_[r, i])}
                    for i, h in enumerate(self.horizons)
                }
                for r, name in enumerate(names)
            },
        }


def fixed_weights(
    members: Sequence[str],
    horizons: Sequence[int],
    weights: np.ndarray,
    threshold: float = 0.0,
    regime_feature: str = "hv_20",
) -> StackedEnsemble:
    """A stack with given weights (3 regimes, horizons, members) and no intercept: how an
    adaptive combiner's weights as of one bar are registered and served."""
    ensemble = StackedEnsemble(tuple(members), tuple(horizons), regime_feature)
    ensemble.threshold_ = float(threshold)
    ensemble.weights_ = np.asarray(weights, dtype=float)
    ensemble.intercepts_ = np.zeros((3, len(horizons)))
    return ensemble


def equal_weights(members: Sequence[str], horizons: Sequence[int]) -> StackedEnsemble:
    """The combination available before any out-of-fold prediction exists."""
    shape = (3, len(horizons), len(members))
    return fixed_weights(members, horizons, np.full(shape, 1.0 / len(members)))
