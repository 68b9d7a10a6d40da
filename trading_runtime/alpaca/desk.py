"""The stand-in broker's trading desk: its orders, positions and cash, matched by the project's
own ``SimulatedBroker`` (market orders fill at the next bar's open, same cost model), so a live
session through the stand-in fills as a replay through the simulator does.

It answers what Alpaca's trading REST API answers (an order's JSON, an error's status and body)
and turns each matching event into the trade update Alpaca would stream. Misbehaviour on request
(``Misbehaviour``): rejected symbols, fills split in two, updates duplicated or reordered, a
position the client's book does not know, 429 rate limiting. It is not thread-safe: the
``Market`` that owns it holds a lock around every call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trading_runtime import events as ev
from trading_runtime.alpaca.wire import (
    OPEN_STATUSES,
    STATUS,
    account_json,
    ident,
    iso,
    order_from_request,
    order_json,
    position_json,
)
from trading_runtime.broker import CrossSection, SimulatedBroker, commission
from trading_runtime.domain import Fill, Order, OrderStatus, Position
from trading_runtime.instruments import Instrument, round_quantity
from trading_runtime.settings import CostModel

Reply = tuple[int, Any]  # an HTTP status and its JSON body


@dataclass
class Misbehaviour:
    """What the stand-in does wrong on purpose (set by the constructor or POST /admin)."""

    reject_symbols: set[str] = field(default_factory=set)  # orders for these: 422
    split_fills: bool = False  # every fill comes as two updates (partial_fill, then fill)
    duplicate_updates: bool = False  # every trade update is sent twice
    reorder_updates: bool = False  # a bar's trade updates are sent in reverse order
    rate_limited: int = 0  # the next N trading requests are answered 429
    retry_after: int = 1  # seconds, in the 429's Retry-After header


def error(status: int, code: int, message: str) -> Reply:
    return status, {"code": code, "message": message}


class Desk:
    def __init__(
        self,
        costs: CostModel,
        instruments: dict[str, Instrument],
        symbols: list[str],
        cash: float,
    ) -> None:
        self.costs, self.instruments = costs, instruments
        self.broker = SimulatedBroker(costs, instruments, symbols)
        self.orders: dict[str, Order] = {}  # every order received, in its latest state
        self.times: dict[str, tuple[datetime, datetime]] = {}  # created, updated (market time)
        self.by_id: dict[str, str] = {}  # Alpaca order id -> client order id
        self.arrived: dict[str, float] = {}  # client order id -> time.time() at arrival
        self.duplicates: list[str] = []  # client ids sent again (answered 422): a client's bug
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self.last: dict[str, float] = {}  # last close per symbol
        self.bad = Misbehaviour()

    # --- REST -------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any], step: int, now: datetime) -> tuple[Reply, list]:
        """POST /v2/orders: the order's JSON and the trade updates it causes."""
        try:
            order = order_from_request(body, now)
        except (KeyError, ValueError) as exc:
            return error(422, 40010000, f"invalid order: {exc}"), []
        cid = order.client_id
        if cid in self.orders:
            self.duplicates.append(cid)
            return error(422, 40010001, "client_order_id must be unique"), []
        if order.symbol in self.bad.reject_symbols or order.symbol not in self.broker.index:
            return error(422, 42210000, f"asset {order.symbol} is not tradable"), []
        self.arrived[cid] = time.time()
        self.broker.submit([order], step)
        self._store(self.broker.working[cid], now, created=now)
        self.by_id[ident("order", cid)] = cid
        return (200, self.order(cid)), [self._update("new", cid, now)]

    def order(self, cid: str) -> dict[str, Any]:
        created, updated = self.times[cid]
        return order_json(self.orders[cid], created, updated)

    def find(self, key: str, by_client_id: bool = False) -> Reply:
        cid = key if by_client_id else self.by_id.get(key)
        if cid not in self.orders:
            return error(404, 40410000, f"order not found for {key}")
        return 200, self.order(cid)

    def listing(self, status: str, limit: int, after: datetime | None, symbols: str | None,
                ascending: bool = False) -> Reply:  # fmt: skip
        """GET /v2/orders: newest first (or oldest), filtered as Alpaca filters (``after``:
        submitted after)."""
        wanted = set(symbols.split(",")) if symbols else None
        rows = []
        for cid in sorted(self.orders, key=lambda c: self.times[c][0], reverse=not ascending):
            row = self.order(cid)
            is_open = row["status"] in OPEN_STATUSES
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            if wanted is not None and row["symbol"] not in wanted:
                continue
            if after is not None and self.times[cid][0] <= after:
                continue
            rows.append(row)
        return 200, rows[:limit]

    def cancel(self, order_id: str, now: datetime) -> tuple[Reply, list]:
        cid = self.by_id.get(order_id)
        if cid is None:
            return error(404, 40410000, f"order not found for {order_id}"), []
        if self.broker.cancel(cid, "cancel requested", "client") is None:
            return error(422, 42210000, f"order is not cancelable: {self.order(cid)['status']}"), []
        self._store(self.orders[cid].moved_to(OrderStatus.CANCELLED), now)
        return (204, None), [self._update("canceled", cid, now)]

    def cancel_all(self, now: datetime) -> tuple[Reply, list]:
        results, updates = [], []
        for cid in list(self.broker.working):
            _, more = self.cancel(ident("order", cid), now)
            results.append({"id": ident("order", cid), "status": 200, "body": self.order(cid)})
            updates += more
        return (207, results), updates

    def account(self) -> Reply:
        value = sum(
            p.market_value(self.last.get(s, p.avg_price)) for s, p in self.positions.items()
        )
        return 200, account_json(self.cash, self.cash + value)

    def position_list(self) -> Reply:
        return 200, [
            position_json(s, p.quantity, p.avg_price, self.last.get(s, p.avg_price))
            for s, p in sorted(self.positions.items())
            if p.quantity != 0
        ]

    def inject_position(self, symbol: str, quantity: float, avg_price: float) -> None:
        """A position the client's book does not know (bought elsewhere, say)."""
        self.positions[symbol] = Position(symbol, quantity, avg_price)

    # --- matching ---------------------------------------------------------------------------

    def on_bar(self, bar: CrossSection) -> list[dict[str, Any]]:
        """Match the working orders against ``bar``: the trade updates, in the order to send."""
        updates: list[dict[str, Any]] = []
        for event in self.broker.on_bar(bar):
            if event.type == ev.ORDER_FILLED:
                updates += self._filled(event.fill, bar.ts)
            elif event.type in (ev.ORDER_CANCELLED, ev.ORDER_EXPIRED):
                status = (
                    OrderStatus.CANCELLED
                    if event.type == ev.ORDER_CANCELLED
                    else OrderStatus.EXPIRED
                )
                self._store(self.orders[event.client_id].moved_to(status), bar.ts)
                updates.append(self._update(STATUS[status], event.client_id, bar.ts))
        self.broker.observe(bar)
        for symbol, i in self.broker.index.items():
            if bar.close[i] == bar.close[i]:  # not NaN
                self.last[symbol] = float(bar.close[i])
        if self.bad.reorder_updates:
            updates.reverse()
        if self.bad.duplicate_updates:
            updates = [u for update in updates for u in (update, update)]
        return updates

    def _filled(self, fill: Fill, ts: datetime) -> list[dict[str, Any]]:
        parts = [fill]
        if self.bad.split_fills:
            first = round_quantity(self.instruments[fill.symbol], fill.quantity / 2)
            if 0 < first < fill.quantity:
                parts = [self._part(fill, first, "1"), self._part(fill, fill.quantity - first, "2")]
        out = []
        for part in parts:
            order = self.orders[part.client_id].with_fill(part)
            self._store(order, ts)
            position = self.positions.get(part.symbol, Position(part.symbol))
            self.positions[part.symbol] = position.with_fill(part)
            self.cash -= part.signed_quantity * part.price * part.multiplier + part.fee
            kind = "fill" if order.status == OrderStatus.FILLED else "partial_fill"
            out.append(self._update(kind, part.client_id, ts, part))
        return out

    def _part(self, fill: Fill, quantity: float, n: str) -> Fill:
        fee = commission(self.costs, quantity, fill.price, fill.multiplier)
        return Fill(
            f"{fill.fill_id}:{n}",
            fill.client_id,
            fill.account,
            fill.symbol,
            fill.side,
            quantity,
            fill.price,
            fee,
            fill.ts,
            fill.reference,
            fill.multiplier,
        )

    def _store(self, order: Order, now: datetime, created: datetime | None = None) -> None:
        self.orders[order.client_id] = order
        self.times[order.client_id] = (created or self.times[order.client_id][0], now)

    def _update(self, kind: str, cid: str, now: datetime, fill: Fill | None = None) -> dict:
        """One trade_updates message, as Alpaca streams it."""
        data: dict[str, Any] = {"event": kind, "order": self.order(cid), "timestamp": iso(now)}
        if fill is not None:
            position = self.positions.get(fill.symbol, Position(fill.symbol))
            data.update(
                execution_id=ident("fill", fill.fill_id),
                price=str(fill.price),
                qty=f"{fill.quantity:g}",
                position_qty=f"{position.quantity:g}",
            )
        return {"stream": "trade_updates", "data": data}
