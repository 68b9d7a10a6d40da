"""From a signal's strength to a target position, and where its protective stop goes.

Volatility targeting gives each symbol an equal share of the annual risk budget, assuming the
symbols uncorrelated (budget / sqrt(n)), with daily volatility from ATR/close; the gross
exposure limit of the risk engine stops a correlated book from adding up past its cap.

Equity is in the account's base currency, so every ``price`` here is too: the engine passes each
symbol's price converted at its FX mark (``FxRates.in_base``), and a quantity is base equity
over a base price - the same as the equity converted to the instrument's currency over its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from trading_runtime.book import Account, Book
from trading_runtime.instruments import Instrument, round_quantity


class Sizer(Protocol):
    needs_volatility: bool

    def targets(
        self, strength: np.ndarray, price: np.ndarray, equity: float, vol: np.ndarray | None
    ) -> np.ndarray:
        """Target quantity per symbol (before lot rounding)."""
        ...


@dataclass(frozen=True)
class FixedQuantity:
    """``quantity`` units per unit of strength: what a reference backtest does."""

    quantity: float
    needs_volatility = False

    def targets(self, strength, price, equity, vol):
        return np.sign(strength) * self.quantity


@dataclass(frozen=True)
class EqualWeight:
    """``gross`` of equity spread evenly over the universe (2% stays in cash for fees and for
    the open being above the close the order was sized at)."""

    n: int
    gross: float = 0.98
    needs_volatility = False

    def targets(self, strength, price, equity, vol):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(strength * self.gross / self.n * equity / price)


@dataclass(frozen=True)
class VolatilityTarget:
    n: int
    target_vol: float = 0.15
    max_weight: float = 0.25
    bars_per_year: float = 252.0
    needs_volatility = True

    def targets(self, strength, price, equity, vol):
        budget = self.target_vol / math.sqrt(self.bars_per_year) / math.sqrt(self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = np.minimum(budget / vol, self.max_weight) * strength
            return np.nan_to_num(weight * equity / price)


@dataclass(frozen=True)
class StopPolicy:
    """Protective stops ``fixed_atr`` ATRs from the entry, or trailing ``trail_atr`` ATRs behind
    the close (and never loosened)."""

    fixed_atr: float | None = None
    trail_atr: float | None = None

    @property
    def active(self) -> bool:
        return self.fixed_atr is not None or self.trail_atr is not None

    def level(self, direction: int, entry: float, close: float, atr: float) -> float | None:
        """Stop price for a long (direction 1) or short (-1) position."""
        if math.isnan(atr):
            return None
        if self.trail_atr is not None:
            return close - direction * self.trail_atr * atr
        return entry - direction * self.fixed_atr * atr

    def tighter(self, direction: int, new: float, old: float) -> bool:
        return (new - old) * direction > 0


def daily_vol(
    features: np.ndarray, columns: list[str], close: np.ndarray, source: str, bars_per_year: float
) -> np.ndarray:
    """Daily volatility per symbol: ATR / close, or the annualized GARCH forecast scaled back
    to a day."""
    if source == "garch":
        return features[:, columns.index("garch_vol")] / np.sqrt(bars_per_year)
    with np.errstate(invalid="ignore", divide="ignore"):
        return features[:, columns.index("atr_14")] / close


def holdings(book: Book, account: Account, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol of ``index``: the position held, and what the working orders (not stops)
    would add. A symbol the run does not trade (a position adopted from the broker by a
    reconciliation) is held, not traded: it is not in the arrays."""
    held, working = np.zeros(len(index)), np.zeros(len(index))
    for symbol, position in account.positions.items():
        if symbol in index:
            held[index[symbol]] = position.quantity
    for order in book.working(account.name):
        if order.tag != "stop" and order.symbol in index:
            working[index[order.symbol]] += order.signed_remaining
    return held, working


def order_size(
    instrument: Instrument,
    limits: dict[str, Any],
    wanted: float,
    price: float,
    exit_all: bool = False,
) -> float:
    """``wanted`` cut to the account's per-order quantity and notional ``limits`` (``price`` in
    the base currency, as the limits are), in lots: a target beyond them is worked towards,
    not refused bar after bar. A final exit is not cut (there is no later bar to work it on;
    the risk checks pass what shrinks)."""
    cap = wanted
    if exit_all:
        return float(round_quantity(instrument, cap))
    limit = limits.get("max_order_quantity")
    if limit is not None:
        cap = min(cap, limit)
    limit = limits.get("max_order_notional")
    if limit is not None:
        cap = min(cap, limit / (price * instrument.multiplier))
    return float(round_quantity(instrument, cap))
