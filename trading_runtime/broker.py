"""The simulated venue: orders rest here and fill against each new bar the way a venue would.

Market orders fill at the bar's open; limits and stops trigger on the bar's high and low (at the
open when it gaps through them). Fills pay a half spread, slippage by the chosen model and
commission, and one symbol's fills in a bar take at most ``participation`` of its volume (the
rest of the order waits, or is cancelled for IOC; FOK fills entirely or not at all).

A fill of an instrument outside the account's base currency carries the rate it converts at
(``fx``: the FX pair's open of the bar it fills in, trading_runtime.fx); its price and fee stay
in the instrument's currency (commission_min and commission_per_share are in it too).

In paper mode the venue keeps a log of every order it received (fsync'd), the way a real venue
remembers orders across a client's crash: a restarted engine re-sending an order finds it known
and nothing is sent twice.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trading_runtime import events as ev
from trading_runtime.domain import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from trading_runtime.instruments import Instrument, round_quantity
from trading_runtime.settings import CostModel

if TYPE_CHECKING:
    from trading_runtime.fx import FxRates

EWMA_LAMBDA = 0.94  # RiskMetrics decay of the daily variance estimate slippage scales with


@dataclass(frozen=True, slots=True)
class CrossSection:
    """All symbols' bars at one time, aligned with the engine's symbol list (NaN: no bar).
    ``tradable`` False: observe it, trade nothing on it (the live feed's stored history, a
    catch-up after a stale spell, an out-of-session bar; see trading_runtime.live_feed)."""

    step: int
    ts: datetime
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: bool = True


def commission(costs: CostModel, quantity: float, price: float, multiplier: float) -> float:
    fee = costs.commission_bps * 1e-4 * quantity * price * multiplier
    fee += costs.commission_per_share * quantity
    return max(fee, costs.commission_min) if fee > 0 or costs.commission_min else 0.0


class SimulatedBroker:
    def __init__(
        self,
        costs: CostModel,
        instruments: dict[str, Instrument],
        symbols: list[str],
        venue_log: Path | None = None,
        fx: FxRates | None = None,
    ) -> None:
        self.costs, self.instruments = costs, instruments
        self.fx = fx  # None, or a one-currency run: every fill in the base currency
        self.index = {s: i for i, s in enumerate(symbols)}
        self.working: dict[str, Order] = {}
        self.eligible: dict[str, int] = {}
        self.live_day: dict[str, object] = {}
        self.variance = np.full(len(symbols), np.nan)
        self._prev_close = np.full(len(symbols), np.nan)
        self.venue_log = venue_log
        self._log = None
        self.received: set[str] = set()
        self.duplicates = 0
        self.triggered: list[str] = []
        if venue_log is not None and venue_log.exists():
            for line in venue_log.read_text().splitlines():
                if line.strip():
                    self.received.add(json.loads(line)["client_id"])

    # --- order entry ------------------------------------------------------------------------

    def submit(self, orders: list[Order], step: int) -> list[ev.Event]:
        """The venue receives ``orders`` (decided on bar ``step``), all at once as one message
        (one fsync of its log): each is accepted or rejected."""
        fresh = [o for o in orders if o.client_id not in self.received]
        self.duplicates += len(orders) - len(fresh)  # re-sent after a crash: already known
        self._receive(fresh)
        return [self._accept(order, step) for order in orders]

    def _accept(self, order: Order, step: int) -> ev.Event:
        if order.symbol not in self.index:
            return ev.OrderRejected(
                order.client_id,
                f"no market data for {order.symbol}",
                key=f"rejected:{order.client_id}",
            )
        if order.status == OrderStatus.NEW:
            order = order.moved_to(OrderStatus.SUBMITTED)
        self.working[order.client_id] = order.moved_to(OrderStatus.ACCEPTED)
        self.eligible[order.client_id] = step + 1 + self.costs.latency_bars
        return ev.OrderAccepted(order.client_id, key=f"accepted:{order.client_id}")

    def _receive(self, orders: list[Order]) -> None:
        self.received.update(o.client_id for o in orders)
        if self.venue_log is None or not orders:
            return
        if self._log is None:
            self._log = self.venue_log.open("a")
        self._log.write("".join(json.dumps({"client_id": o.client_id}) + "\n" for o in orders))
        self._log.flush()
        os.fsync(self._log.fileno())

    def restore(self, orders: list[Order], steps: dict[str, int]) -> list[ev.Event]:
        """Orders the journal says are open: the accepted ones rest again, the ones submitted but
        not acknowledged before a crash are (re)sent, which the venue log makes idempotent."""
        events = []
        for order in orders:
            if order.status == OrderStatus.SUBMITTED:
                events += self.submit([order], steps[order.client_id])
            else:
                self.working[order.client_id] = order
                self.eligible[order.client_id] = (
                    steps[order.client_id] + 1 + (self.costs.latency_bars)
                )
        return events

    def journaled(self) -> None:
        """Nothing to let go: the simulator's events are made in the engine's own process."""

    def cancel(self, client_id: str, reason: str, actor: str = "engine") -> ev.Event | None:
        if self.working.pop(client_id, None) is None:
            return None
        self.eligible.pop(client_id, None)
        return ev.OrderCancelled(client_id, reason, actor, key=f"{ev.ORDER_CANCELLED}:{client_id}")

    # --- matching ---------------------------------------------------------------------------

    def on_bar(self, bar: CrossSection) -> list[ev.Event]:
        """Fills, expiries and IOC/FOK cancels of the working orders against ``bar``."""
        if not self.working:
            return []
        out: list[ev.Event] = []
        self.triggered: list[str] = []
        taken: dict[str, float] = {}
        day = bar.ts.date()
        for cid, order in sorted(self.working.items(), key=lambda kv: self.eligible[kv[0]]):
            if self.eligible[cid] > bar.step:
                continue
            i = self.index[order.symbol]
            if math.isnan(bar.open[i]):
                continue
            first = self.live_day.setdefault(cid, day)
            if order.tif == TimeInForce.DAY and day > first:
                out.append(self._end(cid, ev.OrderExpired, "day order not filled by the close"))
                continue
            order, reference = self._trigger(order, bar, i)
            quantity = self._fillable(order, bar, i, taken) if reference is not None else 0.0
            if quantity > 0 and order.tif == TimeInForce.FOK and quantity < order.remaining:
                quantity = 0.0
            if quantity > 0:
                taken[order.symbol] = taken.get(order.symbol, 0.0) + quantity
                fill = self._fill(order, quantity, reference, bar, i)
                out.append(ev.OrderFilled(fill, key=f"fill:{fill.fill_id}"))
                order = order.with_fill(fill)
                if order.status == OrderStatus.FILLED:
                    self._forget(cid)
                    continue
            self.working[cid] = order
            if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
                left = "not filled in full" if order.tif == TimeInForce.FOK else "rest of IOC"
                out.append(self._end(cid, ev.OrderCancelled, left))
        triggers = [ev.OrderTriggered(c, key=f"triggered:{c}") for c in self.triggered]
        return triggers + out

    def _trigger(self, order: Order, bar: CrossSection, i: int) -> tuple[Order, float | None]:
        """The order as it stands after this bar's prices, and the price it can fill at."""
        o, h, lo = bar.open[i], bar.high[i], bar.low[i]
        buy = order.side == Side.BUY
        kind = order.type
        if kind == OrderType.MARKET:
            return order, o
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
            s = order.stop_price
            if (buy and h >= s) or (not buy and lo <= s):
                at = max(o, s) if buy else min(o, s)
                if kind == OrderType.STOP:
                    return order, at
                order = replace(order, triggered=True)
                self.triggered.append(order.client_id)
                limit = order.limit_price
                return order, (at if (at <= limit if buy else at >= limit) else None)
            return order, None
        limit = order.limit_price
        if buy:
            return order, (o if o <= limit else limit if lo <= limit else None)
        return order, (o if o >= limit else limit if h >= limit else None)

    def _fillable(self, order: Order, bar: CrossSection, i: int, taken: dict[str, float]) -> float:
        if self.costs.participation is None:
            return order.remaining
        cap = self.costs.participation * bar.volume[i] - taken.get(order.symbol, 0.0)
        cap = round_quantity(self.instruments[order.symbol], max(cap, 0.0))
        return min(order.remaining, cap)

    def _fill(
        self, order: Order, quantity: float, reference: float, bar: CrossSection, i: int
    ) -> Fill:
        costs = self.costs
        instrument = self.instruments[order.symbol]
        cost = costs.half_spread_bps * 1e-4 * reference
        if costs.slippage == "fixed":
            cost += costs.slippage_bps * 1e-4 * reference
        else:
            sigma = self._sigma(bar, i)
            if costs.slippage == "volatility":
                cost += costs.volatility_k * sigma * reference
            elif bar.volume[i] > 0:
                cost += costs.impact_eta * sigma * reference * math.sqrt(quantity / bar.volume[i])
        price = reference + order.side.sign * cost
        if order.type != OrderType.MARKET and order.type != OrderType.STOP:
            limit = order.limit_price  # a limit never fills through its price
            price = min(price, limit) if order.side == Side.BUY else max(price, limit)
        price, reference = float(price), float(reference)  # numpy's scalars: journaled as floats
        currency, rate = (None, 1.0)
        if self.fx is not None and self.fx.active:
            currency, rate = self.fx.for_fill(order.symbol, bar)
        return Fill(
            fill_id=f"{order.client_id}:{ev.stamp(bar.ts)}",
            client_id=order.client_id,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=commission(costs, quantity, price, instrument.multiplier),
            ts=bar.ts,
            reference=reference,
            multiplier=instrument.multiplier,
            currency=currency,
            fx_rate=rate,
        )

    def _sigma(self, bar: CrossSection, i: int) -> float:
        """Daily volatility: an EWMA of squared log returns, or the bar's own range at first."""
        if not math.isnan(self.variance[i]):
            return math.sqrt(self.variance[i])
        return math.log(bar.high[i] / bar.low[i]) / (2 * math.sqrt(math.log(2)))

    def observe(self, bar: CrossSection) -> None:
        """Update the volatility estimate with ``bar``'s close (after its fills)."""
        if self.costs.slippage == "fixed":
            return  # only the volatility and impact models use it
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.log(bar.close / self._prev_close) ** 2
        ok = ~np.isnan(r2)
        seed = ok & np.isnan(self.variance)
        self.variance[seed] = r2[seed]
        grow = ok & ~seed
        self.variance[grow] = EWMA_LAMBDA * self.variance[grow] + (1 - EWMA_LAMBDA) * r2[grow]
        self._prev_close = np.where(np.isnan(bar.close), self._prev_close, bar.close)

    def _end(
        self, client_id: str, kind: type[ev.OrderCancelled | ev.OrderExpired], reason: str
    ) -> ev.Event:
        self._forget(client_id)
        return kind(client_id, reason, key=f"{kind.type}:{client_id}")

    def _forget(self, client_id: str) -> None:
        self.working.pop(client_id, None)
        self.eligible.pop(client_id, None)
        self.live_day.pop(client_id, None)
