"""Alpaca's JSON shapes as the stand-in market writes them and alpaca-py reads them: bars,
orders, positions, the account. Numbers are strings where Alpaca sends strings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from trading_runtime.domain import Order, OrderStatus, OrderType, Side, TimeInForce

NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4c1b-9a57-2f7d7c0e4b11")  # the stand-in's ids
STATUS = {
    OrderStatus.SUBMITTED: "pending_new",
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "canceled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
}
OPEN_STATUSES = {"pending_new", "new", "accepted", "partially_filled", "pending_cancel"}


def ident(*parts: str) -> str:
    """A stable UUID for ``parts``: the same order or fill always gets the same id."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def bar_json(row: dict[str, Any]) -> dict[str, Any]:
    """One bar as /v2/stocks/bars lists it (``t`` RFC 3339)."""
    return {"t": iso(row["ts"]), "o": row["open"], "h": row["high"], "l": row["low"],
            "c": row["close"], "v": row["volume"], "n": 0, "vw": row["close"]}  # fmt: skip


def order_json(order: Order, created: datetime, updated: datetime) -> dict[str, Any]:
    """``order`` (as the stand-in holds it) in Alpaca's order shape."""
    price = lambda p: None if p is None else str(p)  # noqa: E731 - a local shorthand
    return {
        "id": ident("order", order.client_id),
        "client_order_id": order.client_id,
        "created_at": iso(created),
        "updated_at": iso(updated),
        "submitted_at": iso(created),
        "filled_at": iso(updated) if order.status == OrderStatus.FILLED else None,
        "expired_at": iso(updated) if order.status == OrderStatus.EXPIRED else None,
        "canceled_at": iso(updated) if order.status == OrderStatus.CANCELLED else None,
        "failed_at": None,
        "asset_id": ident("asset", order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "qty": f"{order.quantity:g}",
        "filled_qty": f"{order.filled:g}",
        "filled_avg_price": price(order.avg_price) if order.filled else None,
        "order_class": "simple",
        "order_type": order.type.value,
        "type": order.type.value,
        "side": order.side.value,
        "time_in_force": order.tif.value,
        "limit_price": price(order.limit_price),
        "stop_price": price(order.stop_price),
        "status": STATUS[order.status],
        "extended_hours": False,
    }


def order_from_request(body: dict[str, Any], created: datetime) -> Order:
    """The Order a POST /v2/orders body asks for (ValueError: not one the stand-in takes).
    The account is the client id's first part, as the engine's ids are ``account-...``."""
    client_id = body.get("client_order_id") or ident("anonymous", iso(created), str(body))
    if body.get("qty") is None:
        raise ValueError("qty is required (notional orders are not supported)")
    limit, stop = body.get("limit_price"), body.get("stop_price")
    return Order(
        client_id=client_id,
        account=client_id.split("-", 1)[0],
        symbol=str(body["symbol"]),
        side=Side(body["side"]),
        quantity=float(body["qty"]),
        type=OrderType(body.get("type", "market")),
        tif=TimeInForce(body.get("time_in_force", "day")),
        limit_price=None if limit is None else float(limit),
        stop_price=None if stop is None else float(stop),
        created=created,
    )


def position_json(symbol: str, qty: float, avg: float, price: float) -> dict[str, Any]:
    return {
        "asset_id": ident("asset", symbol),
        "symbol": symbol,
        "exchange": "NYSE",
        "asset_class": "us_equity",
        "avg_entry_price": str(avg),
        "qty": f"{qty:g}",
        "qty_available": f"{qty:g}",
        "side": "long" if qty >= 0 else "short",
        "market_value": str(qty * price),
        "cost_basis": str(qty * avg),
        "current_price": str(price),
    }


def account_json(cash: float, equity: float) -> dict[str, Any]:
    return {
        "id": ident("account"),
        "account_number": "QTIS-STANDIN",
        "status": "ACTIVE",
        "currency": "USD",
        "cash": str(cash),
        "equity": str(equity),
        "portfolio_value": str(equity),
        "buying_power": str(max(cash, 0.0)),
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "shorting_enabled": True,
        "multiplier": "1",
    }
