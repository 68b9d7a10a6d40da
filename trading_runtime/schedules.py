"""Execution algorithms: a TWAP or VWAP parent order split into slices, one sent per bar.

A schedule is journaled when it starts (with its slices) and when it ends; the book counts the
slices sent, so a restart carries on where the schedule was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.broker import CrossSection
from trading_runtime.domain import Order, OrderStatus, Side
from trading_runtime.feed import BarSource
from trading_runtime.routing import EngineHooks


def split_quantity(quantity: float, weights: np.ndarray, lot: float) -> list[float]:
    """``quantity`` in whole lots over slices in proportion to ``weights``; the last slice
    takes the rounding remainder so the slices add up exactly."""
    lots = round(quantity / lot)
    cumulative = np.floor(np.cumsum(weights) * lots + 1e-9).astype(int)
    cumulative[-1] = lots
    counts = np.diff(np.concatenate([[0], cumulative]))
    return [float(c * lot) for c in counts if c > 0]


def volume_profile(volume: np.ndarray, times: pd.DatetimeIndex, step: int, bars: int) -> np.ndarray:
    """Expected volume of each of the next ``bars`` bars (from one symbol's ``volume`` and the
    bar ``times`` up to ``step``): the same bar-of-session a day earlier, averaged over the last
    20 sessions; daily bars have one slot (equal slices)."""
    volume, times = volume[: step + 1], times[: step + 1]
    per_day = max(1, int(np.unique(times.normalize(), return_counts=True)[1][-20:].max()))
    if per_day == 1:
        return np.full(bars, 1.0 / bars)
    slots = np.arange(step + 1, step + 1 + bars) % per_day
    recent = volume[-20 * per_day :]
    profile = np.array([np.nanmean(recent[k::per_day]) for k in range(per_day)])
    weights = np.nan_to_num(profile[slots], nan=1.0)
    return weights / weights.sum()


class Schedules:
    """Starts, works and ends the schedules of the run's accounts (slices go through
    ``hooks.submit``); ``feed`` has the run's bars (a live feed's grow), for VWAP profiles."""

    def __init__(self, hooks: EngineHooks, feed: BarSource) -> None:
        self.hooks, self.feed = hooks, feed

    def start(
        self,
        account: str,
        algo: str,
        bars: int,
        parent_id: str,
        symbol: str,
        side: Side,
        quantity: float,
        step: int,
        decision: ev.Decision | None = None,
    ) -> None:
        """A ``algo`` ("twap" or "vwap") schedule of ``quantity`` over ``bars`` bars, journaled
        with the ``decision`` behind it (its slices carry none of their own)."""
        weights = np.full(bars, 1.0 / bars)
        if algo == "vwap":
            volume = self.feed.arrays["volume"][:, self.hooks.index[symbol]]
            weights = volume_profile(volume, self.feed.times, step, bars)
        slices = split_quantity(quantity, weights, self.hooks.instruments[symbol].lot_size)
        started = ev.ScheduleStarted(
            parent_id, account, symbol, side, slices, algo, step, decision,
            key=f"schedule:{parent_id}",
        )  # fmt: skip
        self.hooks.emit(started)

    def end(self, book: Book, account: str, reason: str) -> None:
        """Every running schedule of ``account`` stops here."""
        for parent_id, schedule in list(book.schedules.items()):
            if schedule.started.account == account:
                self._ended(parent_id, reason)

    def work(self, book: Book, account: str, bar: CrossSection) -> None:
        """The next slice of every running schedule of ``account`` (one per bar)."""
        for parent_id, schedule in list(book.schedules.items()):
            spec, done = schedule.started, schedule.done
            if spec.account != account or np.isnan(bar.close[self.hooks.index[spec.symbol]]):
                continue
            price = bar.close[self.hooks.index[spec.symbol]]
            child = Order(
                f"{parent_id}-{done}",
                account,
                spec.symbol,
                spec.side,
                spec.slices[done],
                created=bar.ts,
                tag="algo",
                parent_id=parent_id,
            )
            self.hooks.submit(book, child, float(price))
            if book.orders[child.client_id].status == OrderStatus.DENIED:
                self._ended(parent_id, "a slice was denied")
            elif done + 1 >= len(spec.slices):
                self._ended(parent_id, "all slices sent")

    def _ended(self, parent_id: str, reason: str) -> None:
        self.hooks.emit(ev.ScheduleEnded(parent_id, reason, key=f"schedule_end:{parent_id}"))
