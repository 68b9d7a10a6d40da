"""The adapter's view of its orders at Alpaca, kept as the broker's news arrives: trade updates
from the stream, order states from REST (after a submit that found the id taken, at a restart,
after the stream reconnected). Each becomes the events the simulator returns (same types and
keys), so the engine cannot tell the venues apart, and each is applied once:

- a fill's id is the order's client id and the update's execution id, so an update sent twice
  is applied once, in whichever order the updates come;
- fills learned from an order's state (``filled_qty`` and ``filled_avg_price`` grew while the
  stream was away) are one synthetic fill; stream fills whose cumulative quantity that already
  covers are not applied again;
- an order's end (canceled, expired, replaced) that overtook its fills waits for them;
- what cannot be applied (an order this client never sent, a transition the state machine
  refuses) becomes a journaled alert, not an exception that stops the engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from trading_runtime import events as ev
from trading_runtime.broker import commission
from trading_runtime.domain import Fill, IllegalTransition, Order, OrderStatus
from trading_runtime.fix.reports import advanced
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel

log = logging.getLogger(__name__)
EPS = 1e-9
ENDS = {"canceled": ev.OrderCancelled, "expired": ev.OrderExpired, "replaced": ev.OrderCancelled,
        "done_for_day": ev.OrderExpired}  # fmt: skip
REASONS = {
    "canceled": "cancelled at the broker",
    "expired": "day order not filled by the close",
    "replaced": "replaced at the broker",
    "done_for_day": "done for the day at the broker",
}


def number(value: Any) -> float:
    return 0.0 if value in (None, "") else float(value)


def alert(account: str, kind: str, message: str, key: str) -> ev.RiskAlert:
    now = datetime.now(UTC).isoformat()
    return ev.RiskAlert(account, now, kind, message, key=f"{ev.RISK_ALERT}:alpaca:{key}:{kind}")


class Tracker:
    def __init__(self, instruments: dict[str, Instrument], costs: CostModel) -> None:
        self.instruments, self.costs = instruments, costs
        self.known: dict[str, Order] = {}  # every order sent or restored, in its latest state
        self.ids: dict[str, str] = {}  # client id -> Alpaca order id
        self.created: dict[str, datetime] = {}  # client id -> when the broker took it
        self.fills: set[str] = set()  # fill ids applied
        self.synced: dict[str, float] = {}  # filled quantity learned from order states
        self.cancels: dict[str, tuple[str, str]] = {}  # asked for: (reason, actor)
        self.waiting: dict[str, Any] = {}  # an end that overtook fills not yet here
        self.duplicates = 0

    def track(self, order: Order) -> None:
        """``order`` was sent, or is the journal's at a restart: what it has filled counts as
        covered (an update of a fill the journal has is not applied again)."""
        if order.status == OrderStatus.NEW:
            order = order.moved_to(OrderStatus.SUBMITTED)
        self.known.setdefault(order.client_id, order)
        if order.filled > 0:
            self.synced.setdefault(order.client_id, order.filled)

    def open_ids(self) -> list[str]:
        return [cid for cid, o in self.known.items() if o.status.is_open]

    # --- the stream ---------------------------------------------------------------------------

    def update(self, update: Any) -> list[ev.Event]:
        """The events of one trade update (alpaca-py's ``TradeUpdate``)."""
        state, kind = update.order, str(getattr(update.event, "value", update.event))
        cid = state.client_order_id
        order = self.known.get(cid)
        if order is None:
            why = (
                f"a trade update ({kind}) of client order id {cid!r}, which this client never sent"
            )
            return [alert("broker", "unknown_order", f"{why}: not applied", f"{cid}:{kind}")]
        self._remember(state)
        if kind in ("fill", "partial_fill"):
            out = self._stream_fill(order, update)
            waiting = self.waiting.pop(cid, None)
            return out + (self.update(waiting) if waiting is not None else [])
        if kind in ENDS:
            if number(state.filled_qty) > order.filled + EPS:  # its fills are still to come
                self.waiting[cid] = update
                return []
            return self.apply(order, [self._end(cid, kind)])
        if kind in ("new", "accepted", "pending_new"):
            return self.apply(order, [ev.OrderAccepted(cid, key=f"accepted:{cid}")])
        if kind == "rejected" and order.status == OrderStatus.SUBMITTED:
            reason = "rejected by the broker"
            return self.apply(order, [ev.OrderRejected(cid, reason, key=f"rejected:{cid}")])
        if kind == "rejected":  # after it was accepted: the state machine ends it as a cancel
            reason, key = (
                "rejected by the broker after it was accepted",
                f"{ev.ORDER_CANCELLED}:{cid}",
            )
            return self.apply(order, [ev.OrderCancelled(cid, reason, "broker", key=key)])
        log.debug("trade update %s of %s: nothing to apply", kind, cid)
        return []

    def _stream_fill(self, order: Order, update: Any) -> list[ev.Event]:
        cid = order.client_id
        fill_id = f"{cid}:{update.execution_id}"
        covered = number(update.order.filled_qty) <= self.synced.get(cid, 0.0) + EPS
        if fill_id in self.fills or covered:
            self.duplicates += 1
            return []
        fill = self._fill(
            order, fill_id, number(update.qty), number(update.price), update.timestamp
        )
        return self.apply(order, [ev.OrderFilled(fill, key=f"fill:{fill_id}")])

    def _fill(self, order: Order, fill_id: str, qty: float, price: float, ts: datetime) -> Fill:
        """A fill as the simulator makes one; the fee is the cost model's commission (Alpaca
        reports none per fill) and the reference price is the fill's own (it reports no
        pre-cost price)."""
        multiplier = self.instruments[order.symbol].multiplier
        return Fill(
            fill_id,
            order.client_id,
            order.account,
            order.symbol,
            order.side,
            qty,
            price,
            commission(self.costs, qty, price, multiplier),
            ts,
            price,
            multiplier,
        )

    def _end(self, cid: str, kind: str) -> ev.Event:
        reason, actor = self.cancels.pop(cid, (REASONS[kind], "broker"))
        if ENDS[kind] is ev.OrderExpired:
            return ev.OrderExpired(cid, REASONS[kind], key=f"{ev.ORDER_EXPIRED}:{cid}")
        return ev.OrderCancelled(cid, reason, actor, key=f"{ev.ORDER_CANCELLED}:{cid}")

    def apply(self, order: Order, events: list[ev.Event]) -> list[ev.Event]:
        """``events`` that move ``order`` (an accept implied by a later report first); those
        already applied are dropped, an impossible one becomes an alert."""
        out: list[ev.Event] = []
        for event in events:
            if self._duplicate(order, event):
                self.duplicates += 1
                continue
            try:
                if order.status == OrderStatus.SUBMITTED and event.type in IMPLY_ACCEPTED:
                    accepted = ev.OrderAccepted(order.client_id, key=f"accepted:{order.client_id}")
                    order = advanced(order, accepted)
                    out.append(accepted)
                order = advanced(order, event)
            except IllegalTransition as exc:
                key = f"{order.client_id}:{event.key}"
                out.append(alert(order.account, "impossible_report", f"{exc}: not applied", key))
                continue
            if event.type == ev.ORDER_FILLED:
                self.fills.add(event.fill.fill_id)
            out.append(event)
        self.known[order.client_id] = order
        return out

    @staticmethod
    def _duplicate(order: Order, event: ev.Event) -> bool:
        if event.type == ev.ORDER_ACCEPTED:
            return order.status != OrderStatus.SUBMITTED
        if event.type == ev.ORDER_FILLED:
            return False
        return not order.status.is_open  # an end or a reject of an order that ended already

    # --- order states (REST) ------------------------------------------------------------------

    def _remember(self, state: Any) -> None:
        self.ids[state.client_order_id] = str(state.id)
        self.created.setdefault(state.client_order_id, state.created_at)

    def settle(self, state: Any) -> list[ev.Event]:
        """Events taking a known order to the state the broker reports (alpaca-py ``Order``)."""
        cid = state.client_order_id
        order = self.known[cid]
        self._remember(state)
        status = str(getattr(state.status, "value", state.status))
        if status == "rejected":
            return self.apply(order, [ev.OrderRejected(cid, "rejected by the broker",
                                                        key=f"rejected:{cid}")])  # fmt: skip
        events: list[ev.Event] = [ev.OrderAccepted(cid, key=f"accepted:{cid}")]
        filled = number(state.filled_qty)
        if filled > order.filled + EPS:
            quantity = filled - order.filled
            price = (
                number(state.filled_avg_price) * filled - order.avg_price * order.filled
            ) / quantity
            when = state.filled_at or state.updated_at
            fill = self._fill(order, f"{cid}:sync:{filled:g}", quantity, price, when)
            events.append(ev.OrderFilled(fill, key=f"fill:{fill.fill_id}"))
            self.synced[cid] = filled
        if status in ENDS:
            events.append(self._end(cid, status))
            self.waiting.pop(cid, None)
        return self.apply(order, events)


IMPLY_ACCEPTED = (ev.ORDER_FILLED, ev.ORDER_EXPIRED, ev.ORDER_CANCELLED)
