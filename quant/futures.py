"""Futures contracts, when to roll from one to the next, and the back-adjusted continuous series.

Bars come in wide form (:class:`ContractChain`): one row per bar date (a sorted, unique
``DatetimeIndex``), one column per contract symbol, NaN where a contract does not trade; one
frame of closes and, for the activity rules, one of volume and/or open interest. Wide form lines
every contract up on the same bar, which is what a roll compares.

Roll rules (:class:`RollRule`), decided bar by bar with only what is known at that bar:

- ``expiry``: roll on the first bar with at most ``days_before_expiry`` trading days left before
  the front contract's expiry. Trading days are numpy business days (Monday to Friday minus
  ``holidays``) counted from the bar's date, so the rule needs no later bar.
- ``volume`` / ``open_interest``: roll on the first bar on which the next contract's volume
  (open interest) exceeds the front's, and never later than the ``expiry`` rule's bar.

A roll on bar t means the position is moved at t's close: the old contract is held over the
interval into t, the new one from t on, and the continuous series shows the new contract's price
on t. Back-adjustment shifts every bar before a roll by that roll's gap, so the most recent
contract's prices are unchanged and the series moves exactly as the contract held moved:

- ``difference`` (Panama): add the gap ``new - old`` at the roll; price changes are preserved
  (levels far back may go negative).
- ``ratio``: multiply by ``new / old`` at the roll; percentage returns are preserved (prices
  must be positive).

The levels before a roll change whenever a later roll happens (that is what back-adjusting
means); the roll dates, the contract held and the returns on each bar do not. No maintained
Python library builds continuous futures series (pandas-ta, vectorbt, zipline-reloaded and
QuantLib have none, or only unadjusted stitching), so this is pandas and numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

Adjustment = Literal["difference", "ratio"]
RollBy = Literal["expiry", "volume", "open_interest"]


@dataclass(frozen=True)
class FuturesContract:
    """One listed contract: money per point is ``multiplier``, margins are per contract."""

    root: str
    symbol: str
    expiry: date
    multiplier: float
    tick_size: float
    initial_margin: float
    maintenance_margin: float

    def __post_init__(self) -> None:
        if not self.root or not self.symbol:
            raise ValueError(f"a futures contract needs a root and a symbol (got {self!r})")
        if not isinstance(self.expiry, date):
            raise ValueError(f"{self.symbol}: expiry must be a date, got {self.expiry!r}")
        for name in ("multiplier", "tick_size", "initial_margin", "maintenance_margin"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{self.symbol}: {name} must be a positive number, got {value}")
        if self.maintenance_margin > self.initial_margin:
            raise ValueError(
                f"{self.symbol}: maintenance margin {self.maintenance_margin:g} is above the"
                f" initial margin {self.initial_margin:g} (it is the lower level)"
            )

    def notional(self, quantity: float, price: float) -> float:
        """Exposure of ``quantity`` contracts at ``price`` (cash does not move by it)."""
        return quantity * price * self.multiplier

    def margin(self, quantity: float) -> float:
        """Initial margin ``quantity`` contracts (long or short) tie up."""
        return abs(quantity) * self.initial_margin


@dataclass(frozen=True, eq=False)
class ContractChain:
    """One root's contracts (sorted by expiry) and their bars in wide form, columns = symbols."""

    contracts: tuple[FuturesContract, ...]
    close: pd.DataFrame
    volume: pd.DataFrame | None = None
    open_interest: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        contracts = tuple(self.contracts)
        object.__setattr__(self, "contracts", contracts)
        if not contracts:
            raise ValueError("a contract chain needs at least one contract")
        if len({c.root for c in contracts}) > 1:
            raise ValueError(f"one root per chain, got {sorted({c.root for c in contracts})}")
        expiries = [c.expiry for c in contracts]
        if any(a >= b for a, b in itertools.pairwise(expiries)):
            raise ValueError("contracts must be sorted by strictly increasing expiry")
        index = self.close.index
        if not isinstance(index, pd.DatetimeIndex) or not index.is_monotonic_increasing:
            raise ValueError("close must be indexed by sorted bar dates (a DatetimeIndex)")
        if not index.is_unique:
            raise ValueError("close has duplicate bar dates")
        for name in ("close", "volume", "open_interest"):
            frame = getattr(self, name)
            if frame is None:
                continue
            missing = [c.symbol for c in contracts if c.symbol not in frame.columns]
            if missing:
                raise ValueError(f"{name} has no column for {', '.join(missing)}")
            if not frame.index.equals(index):
                raise ValueError(f"{name} must have the same bar dates as close")

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.contracts]

    def contract(self, symbol: str) -> FuturesContract:
        return self.contracts[self.symbols.index(symbol)]

    def activity(self, by: RollBy) -> pd.DataFrame | None:
        """The frame the ``by`` rule compares (None for ``expiry``)."""
        if by == "expiry":
            return None
        frame = self.volume if by == "volume" else self.open_interest
        if frame is None:
            raise ValueError(f"rolling by {by} needs the chain's {by} frame")
        return frame


@dataclass(frozen=True)
class RollRule:
    """When to leave the front contract; see the module docstring."""

    by: RollBy = "expiry"
    days_before_expiry: int = 5
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        if self.by not in ("expiry", "volume", "open_interest"):
            raise ValueError(f"roll by {self.by!r}: one of expiry, volume, open_interest")
        if self.days_before_expiry < 0:
            raise ValueError(f"days_before_expiry must be >= 0, got {self.days_before_expiry}")


@dataclass(frozen=True)
class Roll:
    """Leave ``from_symbol`` for ``to_symbol`` at the close of bar ``date``."""

    from_symbol: str
    to_symbol: str
    date: pd.Timestamp
    reason: RollBy


@dataclass(frozen=True, eq=False)
class ContinuousSeries:
    """A back-adjusted series: ``prices`` (adjusted), ``held`` (the contract whose price each
    bar shows: the new one on a roll bar), ``raw`` (that contract's own price) and
    ``adjustment`` (added for ``difference``, multiplied for ``ratio``; 0 / 1 after the last
    roll)."""

    prices: pd.Series
    held: pd.Series
    raw: pd.Series
    adjustment: pd.Series
    rolls: tuple[Roll, ...]
    method: Adjustment

    def returns(self) -> pd.Series:
        """Simple returns of the adjusted series (ratio adjustment keeps them exact)."""
        return self.prices.pct_change(fill_method=None)

    def changes(self) -> pd.Series:
        """Price changes of the adjusted series (difference adjustment keeps them exact)."""
        return self.prices.diff()


@dataclass(frozen=True)
class _Plan:
    first: int  # index of the contract held on the first bar
    rolls: tuple[tuple[int, int, RollBy], ...] = field(default=())  # (bar, to contract, why)


def roll_schedule(chain: ContractChain, rule: RollRule = RollRule()) -> list[Roll]:
    """The dated rolls of ``chain`` under ``rule``, oldest first."""
    return _rolls(chain, _plan(chain, rule))


def continuous(
    chain: ContractChain, rule: RollRule = RollRule(), method: Adjustment = "ratio"
) -> ContinuousSeries:
    """The back-adjusted continuous series of ``chain`` rolled by ``rule``."""
    if method not in ("difference", "ratio"):
        raise ValueError(f"adjustment {method!r}: one of difference, ratio")
    plan = _plan(chain, rule)
    close = chain.close[chain.symbols].to_numpy(dtype=float)
    n = len(close)
    held = np.full(n, plan.first)
    for bar, to, _ in plan.rolls:
        held[bar:] = to
    raw = close[np.arange(n), held]
    step = np.zeros(n) if method == "difference" else np.ones(n)
    for bar, to, _ in plan.rolls:
        old, new = close[bar, to - 1], close[bar, to]
        if method == "ratio" and (old <= 0 or new <= 0):
            raise ValueError(
                f"ratio adjustment needs positive prices: {chain.symbols[to - 1]} {old:g},"
                f" {chain.symbols[to]} {new:g} on {chain.close.index[bar].date()}"
                " (use the difference adjustment)"
            )
        step[bar] = new - old if method == "difference" else new / old
    # each bar takes the adjustments of the rolls strictly after it
    if method == "difference":
        adjustment = np.append(np.cumsum(step[::-1])[::-1][1:], 0.0)
        prices = raw + adjustment
    else:
        adjustment = np.append(np.cumprod(step[::-1])[::-1][1:], 1.0)
        prices = raw * adjustment
    index = chain.close.index
    symbols = np.array(chain.symbols, dtype=object)
    return ContinuousSeries(
        prices=pd.Series(prices, index, name=f"{chain.contracts[0].root} ({method})"),
        held=pd.Series(symbols[held], index, name="held"),
        raw=pd.Series(raw, index, name="raw"),
        adjustment=pd.Series(adjustment, index, name="adjustment"),
        rolls=tuple(_rolls(chain, plan)),
        method=method,
    )


def trading_days_left(day: date, expiry: date, holidays: Sequence[date] = ()) -> int:
    """Trading days (Monday to Friday, less ``holidays``) from ``day`` up to, not including,
    ``expiry``: what the ``expiry`` rule compares with ``days_before_expiry``."""
    hol = np.array(holidays, dtype="datetime64[D]")
    return int(np.busday_count(np.datetime64(day, "D"), np.datetime64(expiry, "D"), holidays=hol))


def fallback_bars(
    dates: pd.DatetimeIndex, contracts: Sequence[FuturesContract], rule: RollRule
) -> np.ndarray:
    """Per contract, the first bar (position) with at most ``rule.days_before_expiry`` trading
    days left before its expiry, ``len(dates)`` if none: the ``expiry`` rule's roll bar. Each
    bar's count uses only its own date and the calendar."""
    days = dates.to_numpy().astype("datetime64[D]")
    holidays = np.array(rule.holidays, dtype="datetime64[D]")
    out = np.empty(len(contracts), dtype=int)
    for k, contract in enumerate(contracts):
        left = np.busday_count(days, np.datetime64(contract.expiry, "D"), holidays=holidays)
        due = np.flatnonzero(left <= rule.days_before_expiry)
        out[k] = due[0] if due.size else len(dates)
    return out


def _plan(chain: ContractChain, rule: RollRule) -> _Plan:
    """Walk the bars once: on each, the front is left for the next contract when the rule says
    so (at most one roll a bar). Bar 0 starts in the first contract not already due."""
    dates = chain.close.index
    due = fallback_bars(dates, chain.contracts, rule)
    activity = chain.activity(rule.by)
    started = np.flatnonzero(due > 0)
    if not started.size:
        raise ValueError(
            f"every contract of {chain.contracts[0].root} is within {rule.days_before_expiry}"
            f" trading days of expiry on the first bar {dates[0].date()}: add later contracts"
        )
    front, t, rolls = int(started[0]), 1, []
    while front + 1 < len(chain.contracts) and t < len(dates):
        last = int(due[front])
        bar, reason = None, "expiry"
        if activity is not None and t <= last:
            stop = min(last, len(dates) - 1) + 1
            this = activity[chain.symbols[front]].to_numpy(dtype=float)[t:stop]
            nxt = activity[chain.symbols[front + 1]].to_numpy(dtype=float)[t:stop]
            hits = np.flatnonzero(np.nan_to_num(nxt) > np.nan_to_num(this))
            if hits.size:
                bar, reason = t + int(hits[0]), rule.by
        if bar is None:
            if last >= len(dates):
                break
            bar = max(last, t)
        _check_prices(chain, bar, front)
        rolls.append((bar, front + 1, reason))
        front, t = front + 1, bar + 1
    return _Plan(int(started[0]), tuple(rolls))


def _check_prices(chain: ContractChain, bar: int, front: int) -> None:
    for k in (front, front + 1):
        price = chain.close.iloc[bar][chain.symbols[k]]
        if not np.isfinite(price):
            raise ValueError(
                f"cannot roll {chain.symbols[front]} to {chain.symbols[front + 1]} on"
                f" {chain.close.index[bar].date()}: {chain.symbols[k]} has no close that bar"
            )


def _rolls(chain: ContractChain, plan: _Plan) -> list[Roll]:
    dates, symbols = chain.close.index, chain.symbols
    return [Roll(symbols[to - 1], symbols[to], dates[bar], why) for bar, to, why in plan.rolls]
