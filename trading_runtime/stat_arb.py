"""Pairs trading as a signal source: cointegrated pairs chosen on a trailing formation window,
re-chosen on a schedule, traded on their spread's z-score.

Everything happens in ``observe``, bar by bar, on the closes seen so far: the selection of bar
t uses bars t-formation+1..t and nothing after, and the entry/exit state advances there too, so
the warm-up replay after a restart arrives at the state the run had (``signals`` only reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from quant.pairs import Method, Pair, leg_weights, select_pairs
from trading_runtime.broker import CrossSection
from trading_runtime.signals import RuleSource


@dataclass(frozen=True)
class Selection:
    """The pairs chosen at a bar (as symbol indices), for the record and the tests."""

    ts: datetime
    pairs: tuple[Pair, ...]


class PairsSignals(RuleSource):
    """Long the spread (first leg bought, the hedge ratio's worth of the second sold) when its
    z-score falls below ``-entry_z``, short above ``entry_z``; out once it is back within
    ``exit_z`` of its mean, or when the pair is not chosen again at a re-selection."""

    needs_features = False

    def __init__(
        self,
        n: int,
        *,
        formation: int = 252,
        reselect: int = 63,
        entry_z: float = 2.0,
        exit_z: float = 0.5,
        method: Method = "engle-granger",
        significance: float = 0.05,
        max_pairs: int = 2,
    ) -> None:
        if not 0 <= exit_z < entry_z:
            raise ValueError(f"pairs need 0 <= exit_z < entry_z, got {exit_z} and {entry_z}")
        if n < 2:
            raise ValueError("pairs trading needs at least two symbols")
        self.n, self.formation, self.reselect = n, formation, reselect
        self.entry_z, self.exit_z = entry_z, exit_z
        self.choose = {"method": method, "significance": significance, "max_pairs": max_pairs}
        self.history = np.full((formation, n), np.nan)  # log closes, a ring
        self.cursor = 0
        self.seen = 0
        self.since = reselect  # bars since the last selection: choose as soon as possible
        self.last = np.full(n, np.nan)  # each symbol's latest log close
        self.pairs: list[Pair] = []
        self.direction: dict[tuple[int, int], int] = {}
        self.selections: list[Selection] = []

    def observe(self, bar: CrossSection, features: np.ndarray | None) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = np.log(bar.close)
        self.history[self.cursor] = logs
        self.cursor = (self.cursor + 1) % self.formation
        self.seen += 1
        self.since += 1
        self.last = np.where(np.isfinite(logs), logs, self.last)
        if self.seen >= self.formation and self.since >= self.reselect:
            self._select(bar.ts)
        for pair in self.pairs:
            self._advance(pair)

    def _select(self, ts: datetime) -> None:
        window = self.history[(self.cursor + np.arange(self.formation)) % self.formation]
        chosen = select_pairs(window, **self.choose)
        keys = {(p.first, p.second) for p in chosen}
        self.direction = {k: d for k, d in self.direction.items() if k in keys}
        self.pairs, self.since = chosen, 0
        self.selections.append(Selection(ts, tuple(chosen)))

    def _advance(self, pair: Pair) -> None:
        z = float(pair.zscore(self.last))
        key = (pair.first, pair.second)
        held = self.direction.get(key, 0)
        if not np.isfinite(z):
            return
        if held == 0:
            held = -1 if z > self.entry_z else 1 if z < -self.entry_z else 0
        elif (held > 0 and z >= -self.exit_z) or (held < 0 and z <= self.exit_z):
            held = 0
        self.direction[key] = held

    def signals(self, bar: CrossSection) -> tuple[np.ndarray, None]:
        strength = np.zeros(self.n)
        for pair in self.pairs:
            first, second = leg_weights(pair, self.direction.get((pair.first, pair.second), 0))
            strength[pair.first], strength[pair.second] = first, second
        return strength, None
