"""Futures rolls in the engine: an overlay on a strategy's targets that keeps each root's
position in the contract the roll rule holds on the bar, so a strategy trades "the root" and
the engine moves it from contract to contract.

Rule: a contract is held until ``days_before_expiry`` trading days are left before its expiry
(``quant.futures.trading_days_left``, the research series' ``expiry`` rule, from the bar's own
date only); then the next expiry of the root takes over. The strategy's target for the root is
the one it gives the held contract; every other contract of the root is targeted flat, so on a
roll bar the old contract is sold and the new one bought as ordinary orders, each journaled
with its decision (and the roll itself by the engine, ``FuturesRolled``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np

from quant.futures import trading_days_left
from trading_runtime.broker import CrossSection
from trading_runtime.instruments import Instrument


@dataclass(frozen=True)
class RollDue:
    """A root whose position is in ``from_symbol`` while the rule holds ``to_symbol``."""

    root: str
    from_symbol: str
    to_symbol: str | None  # None: no contract left to roll into (the position is closed)
    quantity: float


class FuturesRolls:
    """The overlay for the futures among ``symbols`` (instruments of class ``future`` with a
    root and an expiry); built only when there are some."""

    def __init__(
        self, symbols: list[str], instruments: dict[str, Instrument], days_before_expiry: int
    ) -> None:
        roots: dict[str, list[int]] = defaultdict(list)
        for i, symbol in enumerate(symbols):
            inst = instruments[symbol]
            if inst.asset_class == "future" and inst.underlying and inst.expiry:
                roots[inst.underlying].append(i)
        self.symbols = symbols
        self.expiry = {i: instruments[symbols[i]].expiry for k in roots.values() for i in k}
        self.roots = {r: sorted(k, key=lambda i: self.expiry[i]) for r, k in roots.items()}
        self.days = days_before_expiry
        self.due: list[RollDue] = []  # the last call's rolls

    @classmethod
    def of(
        cls, symbols: list[str], instruments: dict[str, Instrument], days_before_expiry: int
    ) -> FuturesRolls | None:
        rolls = cls(symbols, instruments, days_before_expiry)
        return rolls if rolls.roots else None

    def held(self, root: str, day: date) -> int | None:
        """The index of the contract the rule holds for ``root`` on ``day`` (None: all due)."""
        for i in self.roots[root]:
            if trading_days_left(day, self.expiry[i]) > self.days:
                return i
        return None

    def targets(
        self,
        target: np.ndarray,
        bar: CrossSection,
        prices: np.ndarray,
        current: np.ndarray,
        equity: float,
    ) -> np.ndarray:
        out = np.asarray(target, dtype=float).copy()
        day = bar.ts.date()
        self.due = []
        for root, contracts in self.roots.items():
            front = self.held(root, day)
            wish = out[front] if front is not None else 0.0
            out[contracts] = 0.0
            if front is not None:
                out[front] = wish
            for i in contracts:
                if i != front and current[i] != 0:
                    to = self.symbols[front] if front is not None and wish else None
                    self.due.append(RollDue(root, self.symbols[i], to, float(current[i])))
        return out
