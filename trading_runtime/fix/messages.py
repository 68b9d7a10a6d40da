"""Orders and execution reports in FIX 4.4 terms, both ways: the NewOrderSingle,
OrderCancelRequest and OrderStatusRequest of an order, the order a venue reads back from them,
the ExecutionReport of a venue's event, and the runtime event of a report - with the types,
payloads and keys the simulator returns, so that the engine cannot tell the two venues apart.

A fill's id is the order's ClOrdID and the venue's ExecID (17): FIX makes an ExecID unique
within a trading day or the life of an order, so the pair is unique for good, and two partial
fills in the same second stay two fills."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from simplefix import FixMessage

from trading_runtime import events as ev
from trading_runtime.domain import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from trading_runtime.fix.protocol import (
    VALUE_INCORRECT,
    FieldProblem,
    Fields,
    Tag,
    fix_time,
    name,
    number,
    parse_time,
    required,
    text,
)
from trading_runtime.instruments import Instrument

SIDES = {Side.BUY: "1", Side.SELL: "2"}
ORD_TYPES = {OrderType.MARKET: "1", OrderType.LIMIT: "2", OrderType.STOP: "3",
             OrderType.STOP_LIMIT: "4"}  # fmt: skip
TIME_IN_FORCE = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3",
                 TimeInForce.FOK: "4"}  # fmt: skip
ORD_STATUS = {
    OrderStatus.ACCEPTED: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELLED: "4",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
COMM_TYPE_ABSOLUTE = "3"


class ExecType(StrEnum):
    NEW = "0"
    CANCELED = "4"
    REJECTED = "8"
    EXPIRED = "C"
    TRADE = "F"  # FIX 4.4: partial fill or fill, told apart by OrdStatus 1 or 2
    TRIGGERED = "L"  # a stop-limit's stop was hit: it rests as a limit
    ORDER_STATUS = "I"  # the answer to an OrderStatusRequest: the order as the venue has it


def new_order(order: Order, now: datetime) -> Fields:
    """The NewOrderSingle (35=D) of ``order``."""
    fields = [
        (Tag.CL_ORD_ID, order.client_id),
        (Tag.ACCOUNT, order.account),
        (Tag.SYMBOL, order.symbol),
        (Tag.SIDE, SIDES[order.side]),
        (Tag.TRANSACT_TIME, fix_time(now)),
        (Tag.ORDER_QTY, order.quantity),
        (Tag.ORD_TYPE, ORD_TYPES[order.type]),
        (Tag.PRICE, order.limit_price),
        (Tag.STOP_PX, order.stop_price),
        (Tag.TIME_IN_FORCE, TIME_IN_FORCE[order.tif]),
    ]
    return fields


def cancel_request(order: Order, cancel_id: str, reason: str, now: datetime) -> Fields:
    """The OrderCancelRequest (35=F) of ``order``; Text carries the engine's reason."""
    return [
        (Tag.ORIG_CL_ORD_ID, order.client_id),
        (Tag.CL_ORD_ID, cancel_id),
        (Tag.ACCOUNT, order.account),
        (Tag.SYMBOL, order.symbol),
        (Tag.SIDE, SIDES[order.side]),
        (Tag.TRANSACT_TIME, fix_time(now)),
        (Tag.ORDER_QTY, order.quantity),
        (Tag.TEXT, reason),
    ]


def status_request(order: Order) -> Fields:
    """The OrderStatusRequest (35=H) of ``order``: the venue answers with its state."""
    return [(Tag.CL_ORD_ID, order.client_id), (Tag.SIDE, SIDES[order.side]),
            (Tag.SYMBOL, order.symbol)]  # fmt: skip


def _code(msg: FixMessage, tag: int, codes: dict):
    value = required(msg, tag)
    for key, code in codes.items():
        if code == value:
            return key
    raise FieldProblem(f"tag {tag}: unsupported value {value!r}", VALUE_INCORRECT, tag)


def order_from(msg: FixMessage) -> Order:
    """The order a NewOrderSingle asks for (a ValueError says why it cannot be one)."""
    given = text(msg, Tag.TIME_IN_FORCE) is not None
    tif = _code(msg, Tag.TIME_IN_FORCE, TIME_IN_FORCE) if given else TimeInForce.DAY  # FIX's
    return Order(
        client_id=required(msg, Tag.CL_ORD_ID),
        account=text(msg, Tag.ACCOUNT) or "",
        symbol=required(msg, Tag.SYMBOL),
        side=_code(msg, Tag.SIDE, SIDES),
        quantity=number(msg, Tag.ORDER_QTY),
        type=_code(msg, Tag.ORD_TYPE, ORD_TYPES),
        tif=tif,
        limit_price=number(msg, Tag.PRICE, optional=True),
        stop_price=number(msg, Tag.STOP_PX, optional=True),
    )


def report(
    order: Order,
    exec_type: ExecType,
    exec_id: str,
    when: datetime,
    *,
    reason: str | None = None,
    fill: Fill | None = None,
    cancel_id: str | None = None,
) -> Fields:
    """The ExecutionReport (35=8) of an event of ``order`` (its state after the event)."""
    done = not order.status.is_open
    fields = [
        (Tag.ORDER_ID, f"V-{order.client_id}"),
        (Tag.CL_ORD_ID, cancel_id or order.client_id),
        (Tag.ORIG_CL_ORD_ID, order.client_id if cancel_id else None),
        (Tag.EXEC_ID, exec_id),
        (Tag.EXEC_TYPE, exec_type.value),
        (Tag.ORD_STATUS, ORD_STATUS[order.status]),
        (Tag.ACCOUNT, order.account),
        (Tag.SYMBOL, order.symbol),
        (Tag.SIDE, SIDES[order.side]),
        (Tag.ORDER_QTY, order.quantity),
        (Tag.ORD_TYPE, ORD_TYPES[order.type]),
        (Tag.PRICE, order.limit_price),
        (Tag.STOP_PX, order.stop_price),
        (Tag.TIME_IN_FORCE, TIME_IN_FORCE[order.tif]),
        (Tag.LEAVES_QTY, 0.0 if done else order.remaining),
        (Tag.CUM_QTY, order.filled),
        (Tag.AVG_PX, order.avg_price),
        (Tag.TRANSACT_TIME, fix_time(when)),
        (Tag.TEXT, reason),
    ]
    if fill is not None:
        fields += [
            (Tag.LAST_QTY, fill.quantity),
            (Tag.LAST_PX, fill.price),
            (Tag.COMMISSION, fill.fee),
            (Tag.COMM_TYPE, COMM_TYPE_ABSOLUTE),
            (Tag.REFERENCE_PX, fill.reference),
        ]
    return fields


def exec_type(msg: FixMessage) -> ExecType:
    return _code(msg, Tag.EXEC_TYPE, {e: e.value for e in ExecType})


def order_status(msg: FixMessage) -> OrderStatus:
    return _code(msg, Tag.ORD_STATUS, ORD_STATUS)


def order_id(msg: FixMessage, kind: ExecType) -> str:
    """The ClOrdID of the order a report is about: a cancel's confirmation names the order in
    OrigClOrdID (41), its ClOrdID being the cancel's."""
    if kind == ExecType.CANCELED and text(msg, Tag.ORIG_CL_ORD_ID):
        return required(msg, Tag.ORIG_CL_ORD_ID)
    return required(msg, Tag.CL_ORD_ID)


def event_from(
    msg: FixMessage,
    kind: ExecType,
    order: Order,
    instruments: dict[str, Instrument],
    cancels: dict[str, tuple[str, str]],
) -> ev.Event | None:
    """The runtime event of an ExecutionReport of ``kind`` about ``order``, or None for a kind
    the runtime has no event for. ``cancels`` holds the (reason, actor) of the cancels we asked
    for, by order id: a confirmation is reported with them, as the simulator does."""
    client_id = order.client_id
    if kind == ExecType.NEW:
        return ev.OrderAccepted(client_id, key=f"accepted:{client_id}")
    reason = text(msg, Tag.TEXT) or ""
    if kind == ExecType.REJECTED:
        return ev.OrderRejected(client_id, reason, key=f"rejected:{client_id}")
    if kind == ExecType.TRIGGERED:
        return ev.OrderTriggered(client_id, key=f"triggered:{client_id}")
    if kind == ExecType.TRADE:
        fill = fill_from(msg, order, instruments)
        return ev.OrderFilled(fill, key=f"fill:{fill.fill_id}")
    if kind == ExecType.CANCELED and text(msg, Tag.ORIG_CL_ORD_ID):  # a cancel we asked for
        reason, actor = cancels.pop(client_id, (reason, "venue"))
        return ev.OrderCancelled(client_id, reason, actor, key=f"{ev.ORDER_CANCELLED}:{client_id}")
    if kind in (ExecType.CANCELED, ExecType.EXPIRED):  # the venue's own: IOC rest, day's end
        cls = ev.OrderCancelled if kind == ExecType.CANCELED else ev.OrderExpired
        return cls(client_id, reason, key=f"{cls.type}:{client_id}")
    return None


def fill_from(msg: FixMessage, order: Order, instruments: dict[str, Instrument]) -> Fill:
    """The fill of a Trade report about ``order`` (its account, symbol and side are the
    order's; the report's must agree). Its id: the ClOrdID and the ExecID."""
    for tag, ours in ((Tag.SYMBOL, order.symbol), (Tag.SIDE, SIDES[order.side])):
        if (theirs := required(msg, tag)) != ours:
            raise FieldProblem(
                f"a fill of order {order.client_id} has {name(tag)} {theirs!r}, the order {ours!r}",
                VALUE_INCORRECT,
                tag,
            )
    if order.symbol not in instruments:
        raise FieldProblem(f"a fill of {order.symbol}, an instrument we do not know")
    if text(msg, Tag.COMM_TYPE) not in (None, COMM_TYPE_ABSOLUTE):
        raise FieldProblem("only absolute commissions (13=3) are supported", VALUE_INCORRECT, 13)
    price = finite(msg, Tag.LAST_PX)
    reference = finite(msg, Tag.REFERENCE_PX, optional=True)
    quantity = finite(msg, Tag.LAST_QTY)
    if quantity <= 0:
        raise FieldProblem(f"LastQty (32) must be positive, not {quantity}", VALUE_INCORRECT, 32)
    return Fill(
        fill_id=f"{order.client_id}:{required(msg, Tag.EXEC_ID)}",
        client_id=order.client_id,
        account=order.account,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        fee=finite(msg, Tag.COMMISSION, optional=True) or 0.0,
        ts=parse_time(msg, Tag.TRANSACT_TIME),
        reference=price if reference is None else reference,  # without it: no slippage seen
        multiplier=instruments[order.symbol].multiplier,
    )


def finite(msg: FixMessage, tag: int, optional: bool = False) -> float | None:
    """A float field that is a number (``nan`` and ``inf`` parse as floats, and would poison
    every sum they entered)."""
    value = number(msg, tag, optional=optional)
    if value is not None and not math.isfinite(value):
        raise FieldProblem(
            f"{name(tag)} must be a finite number, not {value}", VALUE_INCORRECT, tag
        )
    return value
