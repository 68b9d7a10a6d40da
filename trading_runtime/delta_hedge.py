"""Delta hedging: an overlay on a strategy's targets that keeps the delta of its options on one
underlying, plus its stock in that underlying, within a band by trading the underlying.

The delta is in units of the underlying (shares): sum over the underlying's options of target
contracts x multiplier x delta (at the bar's closes and the volatility each close implies:
``trading_runtime.options``), plus the stock held. While it is within ``band`` of zero the
hedge is kept as it is (no trade on noise); outside, the stock target is moved so the delta is
zero again (to the lot: the engine rounds). The strategy's own signal never trades the
underlying: its target there is the overlay's. Orders go through the engine as any other, so
``QTIS_TRADE_MIN_TRADE`` still applies to them: a re-hedge smaller than that share of the
hedge is not sent (set it to 0, or keep ``band`` above it, for a strict band).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trading_runtime.broker import CrossSection
from trading_runtime.instruments import Instrument
from trading_runtime.options import OptionDesk, OptionMarket


class DeltaHedge:
    """``index``: the underlying's column; ``desk``: the run's options (and closes)."""

    def __init__(self, index: int, desk: OptionDesk, band: float) -> None:
        if band <= 0:
            raise ValueError(f"the delta band must be positive (shares), got {band}")
        self.index, self.desk, self.band = index, desk, band
        self.underlying = desk.symbols[index]
        self.options = [i for i, s in enumerate(desk.symbols)
                        if desk.underlying_of.get(s) == self.underlying]  # fmt: skip
        if not self.options:
            raise ValueError(
                f"no option on {self.underlying} among the run's symbols: nothing to delta-hedge"
            )
        self.last_delta: float | None = None  # the last call's delta before re-hedging

    @classmethod
    def of(
        cls,
        underlying: str,
        band: float,
        symbols: Sequence[str],
        instruments: Mapping[str, Instrument],
        market: OptionMarket,
    ) -> DeltaHedge:
        if underlying not in symbols:
            raise ValueError(
                f"the delta hedge trades {underlying}, which is not among the run's symbols"
                f" {list(symbols)}: add it to --symbols"
            )
        desk = OptionDesk(instruments, symbols, market)
        return cls(list(symbols).index(underlying), desk, band)

    def delta(self, quantities: np.ndarray) -> float:
        """Delta in units of the underlying of a book of ``quantities`` (the run's columns) at
        the last observed closes."""
        symbols, closes = self.desk.symbols, self.desk.closes
        held = {symbols[i]: float(quantities[i]) for i in (*self.options, self.index)
                if symbols[i] in closes}  # fmt: skip
        greeks = self.desk.greeks(held, only=self.underlying)
        return float(greeks.delta_units.get(self.underlying, 0.0))

    def targets(
        self,
        target: np.ndarray,
        bar: CrossSection,
        prices: np.ndarray,
        current: np.ndarray,
        equity: float,
    ) -> np.ndarray:
        """``target`` with the underlying's quantity set: kept at ``current`` while the delta
        of the targets (with the current hedge) is within the band, else moved to delta 0."""
        self.desk.observe(bar)
        out = np.asarray(target, dtype=float).copy()
        u = self.index
        out[u] = current[u]
        if self.underlying not in self.desk.closes:
            return out
        self.last_delta = delta = self.delta(out)
        if abs(delta) > self.band:
            out[u] = current[u] - delta / self.desk.stock_multiplier[self.underlying]
        return out
