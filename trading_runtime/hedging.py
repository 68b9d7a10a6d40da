"""Dynamic beta hedging: an overlay on a strategy's targets that holds the book's beta to one
hedge instrument within a band, re-hedging only when the betas (or the book) have moved it out.

The book's beta exposure is the money in each position times its beta to the hedge's returns
over the trailing window (``quant.performance.alpha_beta`` on the engine's return window: what
the bars so far say, nothing later); the hedge adds its own money at beta 1. Measured as a
fraction of equity, it may drift up to ``band`` from ``target_beta`` before the hedge is
resized back to the target exactly - a band, so that noise in the betas does not trade daily.
"""

from __future__ import annotations

import numpy as np

from quant.performance import alpha_beta
from trading_runtime.broker import CrossSection
from trading_runtime.history import ReturnWindow


class BetaHedge:
    """``index``: the hedge instrument's column; its own target is the overlay's (the
    strategy's signal never trades it)."""

    def __init__(
        self,
        index: int,
        returns: ReturnWindow,
        multipliers: np.ndarray,
        *,
        window: int = 63,
        band: float = 0.1,
        target_beta: float = 0.0,
        min_bars: int = 20,
    ) -> None:
        if band <= 0:
            raise ValueError(f"the hedge band must be positive, got {band}")
        if not 2 <= min_bars <= window:
            raise ValueError(f"need 2 <= min_bars <= window, got {min_bars} and {window}")
        self.index, self.returns, self.multipliers = index, returns, multipliers
        self.window, self.band, self.target_beta = window, band, target_beta
        self.min_bars = min_bars

    def betas(self) -> np.ndarray:
        """Each symbol's beta to the hedge over the trailing window (NaN: too few bars)."""
        r = self.returns.matrix(self.window)
        hedge = r[:, self.index]
        out = np.full(r.shape[1], np.nan)
        for i in range(r.shape[1]):
            if (np.isfinite(r[:, i]) & np.isfinite(hedge)).sum() >= self.min_bars:
                out[i] = alpha_beta(r[:, i], hedge)[1]
        out[self.index] = 1.0
        return out

    def exposure(self, quantity: np.ndarray, price: np.ndarray, betas: np.ndarray) -> float:
        """Beta-weighted money of a book of ``quantity`` (the hedge included, at beta 1)."""
        money = np.nan_to_num(quantity * price * self.multipliers)
        return float(np.sum(money * np.nan_to_num(betas)))

    def targets(
        self,
        target: np.ndarray,
        bar: CrossSection,
        price: np.ndarray,
        current: np.ndarray,
        equity: float,
    ) -> np.ndarray:
        """``target`` with the hedge's quantity set: kept at ``current`` while the book's beta
        (the targets with the current hedge) is within the band, else re-sized to the target
        beta. No hedge is placed until every held symbol's beta is known. ``price``: in the
        account's currency."""
        out = np.asarray(target, dtype=float).copy()
        h = self.index
        out[h] = current[h]
        betas = self.betas()
        held = np.flatnonzero(out != 0)
        unit = price[h] * self.multipliers[h]
        if equity <= 0 or not np.isfinite(unit) or np.isnan(betas[held]).any():
            return out
        drift = self.exposure(out, price, betas) / equity - self.target_beta
        if abs(drift) > self.band:
            out[h] = current[h] - drift * equity / unit
        return out
