"""Execution quality from the journal: what trading cost against the price a decision was made
at, and how much of what was asked for got done.

- Arrival price: the close of the bar an order was decided on (``order_submitted``'s
  ``price``); a TWAP/VWAP parent's is its first slice's, so the schedule's drift counts.
- Implementation shortfall (Perold) of the filled quantity, in bps of its arrival notional:
  side x (fill - arrival) + fees, split into delay (arrival -> the fill's reference price,
  e.g. the next open), execution (reference -> fill: spread, slippage) and fees.
- Slippage: fill price against its reference price (open, limit or stop), over all fills.
- Market impact: fill price against the open of the bar it filled in, over all fills.
- Fill rate: filled over ordered quantity, and the share of decisions filled in full.
Protective stops are in slippage and impact but not in shortfall and fill rate: a stop that
never triggers did its job, and its "decision" price is not a price anyone traded at.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from trading_runtime import events as ev

EVENTS = (ev.ORDER_SUBMITTED, ev.SCHEDULE_STARTED, ev.ORDER_FILLED)


@dataclass
class _Decision:
    account: str
    quantity: float
    arrival: float | None = None
    filled: float = 0.0


@dataclass
class _Sums:
    """Money amounts over their notionals, per account."""

    decisions: int = 0
    full: int = 0
    ordered: float = 0.0
    filled: float = 0.0
    fills: int = 0
    arrival_notional: float = 0.0
    delay: float = 0.0
    execution: float = 0.0
    fees: float = 0.0
    reference_notional: float = 0.0
    slippage: float = 0.0
    open_notional: float = 0.0
    impact: float = 0.0

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def report(self) -> dict[str, float]:
        def bps(amount: float, notional: float) -> float:
            return amount / notional * 1e4 if notional > 0 else math.nan

        shortfall = self.delay + self.execution + self.fees
        return {
            "decisions": self.decisions,
            "fills": self.fills,
            "fill_rate": self.filled / self.ordered if self.ordered > 0 else math.nan,
            "orders_filled": self.full / self.decisions if self.decisions else math.nan,
            "implementation_shortfall": shortfall,
            "implementation_shortfall_bps": bps(shortfall, self.arrival_notional),
            "shortfall_delay_bps": bps(self.delay, self.arrival_notional),
            "shortfall_execution_bps": bps(self.execution, self.arrival_notional),
            "shortfall_fees_bps": bps(self.fees, self.arrival_notional),
            "slippage_bps": bps(self.slippage, self.reference_notional),
            "market_impact_bps": bps(self.impact, self.open_notional),
        }


def execution_quality(
    events: Iterable[ev.Event], opens: Mapping[tuple[str, pd.Timestamp], float] | None = None
) -> dict[str, dict[str, float]]:
    """Per account and ``total``. ``opens`` maps (symbol, bar time) to the bar's open; without
    it (or for a bar it lacks) market impact is not measured."""
    opens = opens or {}
    decisions: dict[str, _Decision] = {}
    decision_of: dict[str, str | None] = {}  # client id -> its decision (None: a stop)
    sums: dict[str, _Sums] = {}
    for event in events:
        if isinstance(event, ev.ScheduleStarted):
            decisions[event.parent_id] = _Decision(event.account, float(sum(event.slices)))
        elif isinstance(event, ev.OrderSubmitted):
            order = event.order
            sums.setdefault(order.account, _Sums())
            if order.tag == "stop":
                decision_of[order.client_id] = None
                continue
            key = order.parent_id or order.client_id
            decision = decisions.setdefault(key, _Decision(order.account, order.quantity))
            if decision.arrival is None:
                decision.arrival = event.price
            decision_of[order.client_id] = key
        elif isinstance(event, ev.OrderFilled):
            fill = event.fill
            s = sums.setdefault(fill.account, _Sums())
            sign = 1 if fill.side == "buy" else -1
            units = fill.quantity * fill.multiplier * fill.fx_rate  # money in the base currency
            price, reference = fill.price, fill.reference
            s.fills += 1
            s.reference_notional += reference * units
            s.slippage += sign * (price - reference) * units
            bar_open = opens.get((fill.symbol, pd.Timestamp(fill.ts)))
            if bar_open is not None and math.isfinite(bar_open):
                s.open_notional += bar_open * units
                s.impact += sign * (price - bar_open) * units
            key = decision_of.get(fill.client_id)
            if key is None:
                continue
            decision = decisions[key]
            decision.filled += fill.quantity
            s.arrival_notional += decision.arrival * units
            s.delay += sign * (reference - decision.arrival) * units
            s.execution += sign * (price - reference) * units
            s.fees += fill.fee * fill.fx_rate
    for decision in decisions.values():
        if decision.arrival is None:  # every slice was denied: nothing reached the market
            continue
        s = sums.setdefault(decision.account, _Sums())
        s.decisions += 1
        s.ordered += decision.quantity
        s.filled += decision.filled
        s.full += decision.filled >= decision.quantity - 1e-9
    total = _Sums()
    for s in sums.values():
        total.add(s)
    return {name: s.report() for name, s in sums.items()} | {"total": total.report()}
