"""The gateway's view of its orders, kept in the order the venue's reports arrive. Every
ExecutionReport is checked against it before its event goes to the engine, so the engine only
gets events its book can apply: each fill once, no transition the order state machine refuses.
What cannot be applied - a report of an order this session did not send, a fill without (or
with another) Account, an impossible transition, a report that cannot be read - becomes a
journaled alert (a ``risk_alert`` whose kind names the problem) instead of an exception that
stops the engine. A fill of one of our orders is booked to the order's account either way.

A fill is a duplicate when its id (ClOrdID and ExecID) was applied already, or when its
CumQty (14) says the order's filled quantity includes it already - which also holds across a
restart, where the journal's orders carry what they have filled.

At a restart the orders the journal has open are asked about (OrderStatusRequest); the answer
(ExecType I) settles what the venue did meanwhile: an order it has is accepted, one it ended is
cancelled or expired, one it does not know is to be sent again, and fills it has that the
journal lacks raise an alert."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from simplefix import FixMessage

from trading_runtime import events as ev
from trading_runtime.domain import IllegalTransition, Order, OrderStatus
from trading_runtime.fix.messages import (
    ExecType,
    event_from,
    exec_type,
    finite,
    order_id,
    order_status,
)
from trading_runtime.fix.protocol import Tag, decoded, number, required, text
from trading_runtime.instruments import Instrument

log = logging.getLogger(__name__)
EPS = 1e-9
UNKNOWN_ORDER = "5"  # OrdRejReason (103)
ENDED = {OrderStatus.CANCELLED: ev.OrderCancelled, OrderStatus.EXPIRED: ev.OrderExpired}
ENDS = {ev.ORDER_REJECTED: OrderStatus.REJECTED, ev.ORDER_CANCELLED: OrderStatus.CANCELLED,
        ev.ORDER_EXPIRED: OrderStatus.EXPIRED}  # fmt: skip
# reports that say the venue took an order whose New report has not come: accepted first
IMPLY_ACCEPTED = (ExecType.TRADE, ExecType.TRIGGERED, ExecType.EXPIRED)


def alert(msg: FixMessage, kind: str, message: str, account: str | None = None) -> ev.RiskAlert:
    """A journaled alert about ``msg``; keyed on its number and first SendingTime, so a resend
    of the same message is journaled once."""
    seq = text(msg, Tag.MSG_SEQ_NUM)
    sent = text(msg, Tag.ORIG_SENDING_TIME) or text(msg, Tag.SENDING_TIME)
    shown = "|".join(f"{t.decode(errors='replace')}={decoded(v)}" for t, v in msg.pairs)
    return ev.RiskAlert(
        account or text(msg, Tag.ACCOUNT) or "venue",
        datetime.now(UTC).isoformat(),
        kind,
        f"{message} (FIX message {seq}: {shown[:400]})",
        key=f"{ev.RISK_ALERT}:fix:{seq}:{sent}:{kind}",
    )


def advanced(order: Order, event: ev.Event) -> Order:
    """``order`` after ``event``, as the engine's book moves it (IllegalTransition if the
    order state machine refuses)."""
    if event.type == ev.ORDER_FILLED:
        return order.with_fill(event.fill)
    if event.type == ev.ORDER_TRIGGERED:
        return replace(order, triggered=True)
    status = {
        ev.ORDER_ACCEPTED: OrderStatus.ACCEPTED,
        ev.ORDER_REJECTED: OrderStatus.REJECTED,
        ev.ORDER_CANCELLED: OrderStatus.CANCELLED,
        ev.ORDER_EXPIRED: OrderStatus.EXPIRED,
    }[event.type]
    return order.moved_to(status)


class Orders:
    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self.known: dict[str, Order] = {}  # every order sent or restored, in its latest state
        self.fills: set[str] = set()  # fill ids applied
        self.duplicates = 0  # reports already applied, ignored
        self.asked: set[str] = set()  # OrderStatusRequests not answered yet
        self.unknown: set[str] = set()  # orders the venue answered it does not know

    def track(self, order: Order) -> None:
        """``order`` was sent (or, at a restart, is the journal's): reports about it are ours.
        A known order keeps the state its reports gave it."""
        if order.status == OrderStatus.NEW:
            order = order.moved_to(OrderStatus.SUBMITTED)
        self.known.setdefault(order.client_id, order)

    def events(self, msg: FixMessage, cancels: dict[str, tuple[str, str]]) -> list[ev.Event]:
        """The events of one ExecutionReport, alerts included (a FieldProblem says why the
        report cannot be read)."""
        kind = exec_type(msg)
        if kind == ExecType.ORDER_STATUS:
            return self._reconcile(msg)
        client_id = order_id(msg, kind)
        order = self.known.get(client_id)
        if order is None:
            what = f"an execution report of ClOrdID {client_id!r}, an order this session never sent"
            return [alert(msg, "unknown_order", f"{what}: not applied")]
        out = self._account(msg, order) if kind == ExecType.TRADE else []
        event = event_from(msg, kind, order, self.instruments, cancels)
        if event is None:
            return out
        if self._duplicate(order, event):
            self.duplicates += 1
            return out
        if event.type == ev.ORDER_FILLED and self._counted(msg, order):
            why = (f"a fill of order {client_id} with a new ExecID whose CumQty (14) the order's"
                   f" {order.filled:g} filled include already: not applied")  # fmt: skip
            return [*out, alert(msg, "duplicate_fill", why, order.account)]
        try:
            if order.status == OrderStatus.SUBMITTED and kind in IMPLY_ACCEPTED:
                accepted = ev.OrderAccepted(client_id, key=f"accepted:{client_id}")
                order = advanced(order, accepted)  # the venue took it, or it could not fill
                out.append(accepted)
            self.known[client_id] = advanced(order, event)
        except IllegalTransition as exc:
            return [e for e in out if e.type == ev.RISK_ALERT] + [
                alert(msg, "impossible_report", f"{exc}: not applied", order.account)
            ]
        if event.type == ev.ORDER_FILLED:
            self.fills.add(event.fill.fill_id)
            out += self._gap(msg, order, event.fill.quantity)
        return [*out, event]

    def _account(self, msg: FixMessage, order: Order) -> list[ev.Event]:
        account, cid = text(msg, Tag.ACCOUNT), order.client_id
        if account is None:
            why = f"a fill of order {cid} without Account (1): booked to {order.account!r}"
            return [alert(msg, "missing_account", why, order.account)]
        if account != order.account:
            why = f"a fill of order {cid} for Account {account!r}: booked to {order.account!r}"
            return [alert(msg, "account_mismatch", why, order.account)]
        return []

    def _duplicate(self, order: Order, event: ev.Event) -> bool:
        """``event`` was applied already: the same fill, a state the order is in."""
        if event.type == ev.ORDER_FILLED:
            return event.fill.fill_id in self.fills
        if event.type == ev.ORDER_ACCEPTED:
            return order.status != OrderStatus.SUBMITTED
        if event.type == ev.ORDER_TRIGGERED:
            return order.triggered
        return order.status == ENDS[event.type]

    @staticmethod
    def _counted(msg: FixMessage, order: Order) -> bool:
        """A fill the order's filled quantity includes already, says its CumQty (14)."""
        cum = number(msg, Tag.CUM_QTY, optional=True)
        return cum is not None and order.filled > 0 and cum <= order.filled + EPS

    def _gap(self, msg: FixMessage, order: Order, quantity: float) -> list[ev.Event]:
        """An alert when CumQty says fills came before this one that never reached us."""
        cum = number(msg, Tag.CUM_QTY, optional=True)
        if cum is None or cum <= order.filled + quantity + EPS:
            return []
        why = (f"order {order.client_id}: the venue reports {cum:g} filled, this fill makes"
               f" {order.filled + quantity:g} - fills are missing")  # fmt: skip
        return [alert(msg, "fills_missing", why, order.account)]

    def to_send_again(self) -> set[str]:
        """The unacknowledged orders asked about that the venue does not know, or did not
        answer about in time; the questions are closed."""
        pending, self.unknown, self.asked = self.unknown | self.asked, set(), set()
        submitted = OrderStatus.SUBMITTED
        return {cid for cid in pending if self.known[cid].status == submitted}

    def _reconcile(self, msg: FixMessage) -> list[ev.Event]:
        """The answer to an OrderStatusRequest: the events that bring the order to the venue's
        state, or an alert when the quantities disagree."""
        client_id = required(msg, Tag.CL_ORD_ID)
        order = self.known.get(client_id)
        if order is None or client_id not in self.asked:
            log.info("FIX: an order status of %s nobody asked for: ignored", client_id)
            return []
        self.asked.discard(client_id)
        status, cum = order_status(msg), finite(msg, Tag.CUM_QTY)
        if status == OrderStatus.REJECTED and text(msg, Tag.ORD_REJ_REASON) == UNKNOWN_ORDER:
            if order.status == OrderStatus.SUBMITTED:
                self.unknown.add(client_id)  # never arrived: it is sent again
                return []
            why = f"the venue does not know order {client_id}, which the journal has {order.status}"
            return [alert(msg, "unknown_at_venue", why, order.account)]
        if abs(cum - order.filled) > EPS:
            why = (f"order {client_id}: the venue reports {cum:g} filled, the journal"
                   f" {order.filled:g}")  # fmt: skip
            kind = "fills_missing" if cum > order.filled else "fills_mismatch"
            return [alert(msg, kind, why, order.account)]
        return self._settle(order, status)

    def _settle(self, order: Order, status: OrderStatus) -> list[ev.Event]:
        """Events taking ``order`` (quantities agreeing) to the venue's ``status``."""
        cid, out = order.client_id, []
        if order.status == OrderStatus.SUBMITTED and status != OrderStatus.REJECTED:
            out.append(ev.OrderAccepted(cid, key=f"accepted:{cid}"))
        elif order.status == OrderStatus.SUBMITTED:
            out.append(ev.OrderRejected(cid, "rejected by the venue", key=f"rejected:{cid}"))
        if status in ENDED and order.status.is_open:
            reason = f"{status} at the venue (order status at logon)"
            out.append(ENDED[status](cid, reason, key=f"{ENDED[status].type}:{cid}"))
        for event in out:
            order = advanced(order, event)
        self.known[cid] = order
        return out
