"""The runtime's value types: orders, fills, positions, signals and bars, each immutable.

State changes are new values (``Order.moved_to`` returns the order in its new state, refusing a
transition the state machine does not allow), so a projection that replays the same events
always arrives at the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"  # expires at the end of the trading day it became live in
    GTC = "gtc"
    IOC = "ioc"  # fills what it can on its first bar, the rest is cancelled
    FOK = "fok"  # fills entirely on its first bar or not at all


class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DENIED = "denied"  # refused by the pre-trade risk engine, never sent

    @property
    def is_open(self) -> bool:
        return self in OPEN


OPEN = frozenset({OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.SUBMITTED, OrderStatus.DENIED}),
    OrderStatus.SUBMITTED: frozenset(
        {OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.DENIED: frozenset(),
}


class IllegalTransition(ValueError):
    """An event that would move an order where the state machine does not allow."""


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants for one symbol: a direction and conviction in [-1, 1], and the
    forecast behind it (a model's log return; None for rule strategies)."""

    symbol: str
    ts: datetime
    strength: float
    forecast: float | None = None


@dataclass(frozen=True, slots=True)
class Order:
    client_id: str  # deterministic: the same decision always gets the same id
    account: str
    symbol: str
    side: Side
    quantity: float
    type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.GTC
    limit_price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    created: datetime | None = None  # bar the decision was taken on
    tag: str = "entry"  # entry | stop | algo | flatten | manual | roll
    parent_id: str | None = None  # the TWAP/VWAP schedule a child belongs to
    status: OrderStatus = OrderStatus.NEW
    filled: float = 0.0
    avg_price: float = 0.0
    triggered: bool = False  # a stop-limit whose stop was hit now rests as a limit
    reason: str | None = None  # why it was denied, rejected, cancelled or expired

    def __post_init__(self) -> None:
        if not self.quantity > 0:
            raise ValueError(f"order {self.client_id}: quantity must be positive")
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise ValueError(f"order {self.client_id}: a {self.type} order needs limit_price")
        if needs_stop != (self.stop_price is not None):
            raise ValueError(f"order {self.client_id}: a {self.type} order needs stop_price")

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def signed_remaining(self) -> float:
        return self.side.sign * self.remaining

    def moved_to(self, status: OrderStatus, **changes: Any) -> Order:
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"order {self.client_id}: {self.status} -> {status} is not allowed"
            )
        return self._evolve(status=status, **changes)

    def _evolve(self, **changes: Any) -> Order:
        """A copy with ``changes``: ``dataclasses.replace`` without re-running the checks of
        ``__post_init__`` (quantity, prices and type never change after creation)."""
        new = object.__new__(Order)
        for name in ORDER_FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    def with_fill(self, fill: Fill) -> Order:
        filled = self.filled + fill.quantity
        if filled > self.quantity + 1e-9:
            raise IllegalTransition(
                f"order {self.client_id}: fill of {fill.quantity} exceeds remaining "
                f"{self.remaining}"
            )
        average = (self.avg_price * self.filled + fill.price * fill.quantity) / filled
        done = filled >= self.quantity - 1e-9
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        return self.moved_to(status, filled=filled, avg_price=average)

    def to_payload(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in ORDER_FIELDS}
        data["created"] = self.created.isoformat() if self.created else None
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Order:
        data = dict(data)
        data["side"], data["type"] = Side(data["side"]), OrderType(data["type"])
        data["tif"], data["status"] = TimeInForce(data["tif"]), OrderStatus(data["status"])
        data["created"] = datetime.fromisoformat(data["created"]) if data["created"] else None
        return cls(**data)


ORDER_FIELDS = tuple(f.name for f in fields(Order))


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str  # deterministic: order id + bar + sequence within the bar
    client_id: str
    account: str
    symbol: str
    side: Side
    quantity: float
    price: float  # after spread and slippage
    fee: float
    ts: datetime  # bar the fill happened in
    reference: float  # the price before costs (open, limit or stop): slippage = price - it
    multiplier: float = 1.0
    # an instrument outside the account's base currency: its currency, and the rate (base per
    # 1 unit of it) the fill converted at - price and fee are in ``currency``, the account's
    # cash moves by ``cash_flow`` (trading_runtime.fx, docs/multi_currency.md)
    currency: str | None = None  # None: the base currency (``fx_rate`` 1.0)
    fx_rate: float = 1.0

    @property
    def signed_quantity(self) -> float:
        return self.side.sign * self.quantity

    @property
    def slippage_cost(self) -> float:
        """Money lost to spread, slippage and impact (positive is a cost), in the instrument's
        currency."""
        return self.side.sign * (self.price - self.reference) * self.quantity * self.multiplier

    @property
    def cash_flow(self) -> float:
        """What the fill does to the account's cash, in the base currency: the traded notional
        and the fee, converted at ``fx_rate`` (exactly the unconverted sum when it is 1.0)."""
        return -(self.signed_quantity * self.price * self.multiplier + self.fee) * self.fx_rate

    def to_payload(self) -> dict[str, Any]:
        """The journal's JSON; a fill in the base currency leaves ``currency`` and ``fx_rate``
        out, so its payload is what it was before accounts had a base currency."""
        data = {name: getattr(self, name) for name in FILL_FIELDS}
        data["ts"] = self.ts.isoformat()
        if self.currency is None and self.fx_rate == 1.0:
            del data["currency"], data["fx_rate"]
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Fill:
        data = dict(data)
        data["side"], data["ts"] = Side(data["side"]), datetime.fromisoformat(data["ts"])
        return cls(**data)


FILL_FIELDS = tuple(f.name for f in fields(Fill))


@dataclass(frozen=True, slots=True)
class Position:
    """A net position at average cost; ``realized`` is the PnL of what was closed.

    ``avg_price`` is in the instrument's currency and ``fx`` the average rate its cost was
    converted at (weighted by local cost), so ``avg_price x fx`` is the average cost in the
    account's base currency. ``realized`` is in the base currency: proceeds converted at the
    closing fill's rate less cost converted at the opening fills' - the FX move on the
    principal included (1.0 throughout, and the formulas those of one currency, in the base)."""

    symbol: str
    quantity: float = 0.0
    avg_price: float = 0.0
    realized: float = 0.0
    multiplier: float = 1.0
    fx: float = 1.0

    def with_fill(self, fill: Fill) -> Position:
        q, dq = self.quantity, fill.signed_quantity
        new = q + dq
        realized, fx, rate = self.realized, self.fx, fill.fx_rate
        if q == 0 or (q > 0) == (dq > 0):  # opening or adding
            avg = (self.avg_price * abs(q) + fill.price * abs(dq)) / abs(new)
            if q == 0:
                fx = rate
            elif rate != fx:  # the base cost's average rate
                fx = (self.avg_price * abs(q) * fx + fill.price * abs(dq) * rate) / (avg * abs(new))
        else:  # reducing, closing or flipping
            closed = min(abs(dq), abs(q))
            realized += (
                closed * (fill.price * rate - self.avg_price * fx) * (1 if q > 0 else -1)
                * (self.multiplier)
            )  # fmt: skip
            if abs(new) < 1e-12:
                new, avg, fx = 0.0, 0.0, 1.0
            elif (new > 0) == (q > 0):
                avg = self.avg_price
            else:
                avg, fx = fill.price, rate
        return replace(self, quantity=new, avg_price=avg, realized=realized, fx=fx)

    def market_value(self, price: float, rate: float = 1.0) -> float:
        """At ``price`` (its currency), in the base currency at ``rate``."""
        return self.quantity * price * self.multiplier * rate

    def unrealized(self, price: float, rate: float | None = None) -> float:
        """At ``price``: in the instrument's currency, or with ``rate`` in the base currency
        (against the cost converted at the opening fills' rates: the FX move included)."""
        if rate is None:
            return self.quantity * (price - self.avg_price) * self.multiplier
        return self.quantity * (price * rate - self.avg_price * self.fx) * self.multiplier
