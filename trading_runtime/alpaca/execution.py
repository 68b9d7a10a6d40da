"""The engine's execution through Alpaca's trading API (alpaca-py): orders over REST, order and
fill news over the trade updates WebSocket, answered with the events the simulator returns.

The stream runs on its own thread and queues its events; the engine takes them in ``on_bar``
(as ``fix.gateway.FixGateway`` does). The client order id is the engine's deterministic id, so
a restarted engine asks the broker about each open order (``restore``) and sends again only the
ones the broker does not know: nothing is sent twice. Alpaca keeps no stream backlog: after the
stream reconnects, the orders that may have changed meanwhile are read back over REST (``on_bar``
does it before handing events over). A 429 waits for its Retry-After; a broker that cannot be
reached is retried with backoff. ``broker_state`` reads positions, cash and open orders for
reconciliation. The keys come from ``AlpacaSettings`` (environment or secret files) and are
never logged or put on a command line."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from alpaca.trading.stream import TradingStream
from requests import RequestException

from core.errors import QtisError
from trading_runtime import events as ev
from trading_runtime.alpaca.updates import Tracker, alert
from trading_runtime.broker import CrossSection
from trading_runtime.domain import Order, OrderStatus, OrderType
from trading_runtime.instruments import Instrument
from trading_runtime.reconcile import BrokerState
from trading_runtime.settings import CostModel
from warehouse.live.alpaca import QUIET_SOCKET
from warehouse.settings import AlpacaSettings

log = logging.getLogger(__name__)
TAKEN = 40010001  # Alpaca's code: client_order_id must be unique
PAGE = 500  # the most orders one GET /v2/orders returns


class AlpacaError(QtisError):
    """The broker cannot be used as configured; the message says what to change."""


def stream_url(settings: AlpacaSettings) -> str:
    """The trade updates WebSocket: the setting, or the trading URL's host at /stream."""
    if settings.stream_url:
        return settings.stream_url
    base = settings.trading_url.rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/stream"


def keys(settings: AlpacaSettings) -> tuple[str, str]:
    if settings.key_id is None or settings.secret_key is None:
        raise AlpacaError(
            "Alpaca needs its keys: set QTIS_ALPACA_KEY_ID and QTIS_ALPACA_SECRET_KEY (or put "
            "them in files of those names in the secrets directory)"
        )
    return settings.key_id.get_secret_value(), settings.secret_key.get_secret_value()


REQUESTS = {
    OrderType.MARKET: MarketOrderRequest,
    OrderType.LIMIT: LimitOrderRequest,
    OrderType.STOP: StopOrderRequest,
    OrderType.STOP_LIMIT: StopLimitOrderRequest,
}


def request(order: Order) -> OrderRequest:
    """The alpaca-py request of ``order`` (its type's class: the base drops the prices)."""
    prices = {"limit_price": order.limit_price, "stop_price": order.stop_price}
    return REQUESTS[order.type](
        symbol=order.symbol,
        qty=order.quantity,
        side=OrderSide(order.side.value),
        time_in_force=AlpacaTif(order.tif.value),
        client_order_id=order.client_id,
        **{k: v for k, v in prices.items() if v is not None},
    )


def rest_client(key: str, secret: str, settings: AlpacaSettings) -> TradingClient:
    client = TradingClient(key, secret, paper=settings.paper, url_override=settings.trading_url)
    client._retry = 0  # alpaca-py retries a 429 after a fixed 3 s; we honour Retry-After
    return client


class _Stream(TradingStream):
    """alpaca-py's trade updates stream, telling the adapter each time it (re)connects."""

    def __init__(self, key: str, secret: str, url: str, paper: bool, on_connect) -> None:
        super().__init__(
            key, secret, paper=paper, url_override=url, websocket_params=QUIET_SOCKET
        )  # the auth frame holds the secret: its socket never logs frames
        self._on_connect = on_connect

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self._on_connect()


class AlpacaExecution:
    def __init__(
        self,
        instruments: dict[str, Instrument],
        costs: CostModel,
        settings: AlpacaSettings,
        attempts: int = 6,
        max_wait: float = 30.0,
        concurrency: int = 1,
    ) -> None:
        """``attempts``: tries of one REST call through 429s and connection errors, waiting
        Retry-After (or a doubling backoff up to ``max_wait`` seconds) in between.
        ``concurrency``: symbols whose orders are POSTed at once (Alpaca has no batch
        endpoint, and each request is a network round trip). One symbol's orders always go in
        order; with 1 (the default) every order does, so the broker queues them as a replay's
        simulator does and the fills equal the replay's event for event."""
        key, secret = keys(settings)
        self.url = settings.trading_url
        self._new_client = lambda: rest_client(key, secret, settings)
        self._local = threading.local()  # a client (an HTTP session) per thread
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="alpaca-rest")
        self.tracker = Tracker(instruments, costs)
        self.attempts, self.max_wait = attempts, max_wait
        self.connects = 0
        self.on_reconnect: Callable[[], None] | None = None  # reconciliation: compare again
        self.received = 0  # trade updates received
        self._resync = False
        self._inbox: list[ev.Event] = []
        self._lock = threading.Condition()
        self._stream = _Stream(key, secret, stream_url(settings), settings.paper, self._connected)
        self._stream.subscribe_trade_updates(self._on_update)
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Start the trade updates stream (its thread reconnects by itself, with backoff)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._stream.run, name="alpaca-stream", daemon=True
            )
            self._thread.start()

    @property
    def client(self) -> TradingClient:
        """This thread's alpaca-py client (a requests session is not shared between threads)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
        return client

    def close(self) -> None:
        self._pool.shutdown()
        if self._thread is not None:
            while self._stream._loop is None and self._thread.is_alive():
                self._thread.join(0.01)
            if self._thread.is_alive():
                self._stream.stop()
                # closing the socket wakes its reader now, not at its 5 s receive timeout
                asyncio.run_coroutine_threadsafe(self._stream.close(), self._stream._loop).result(5)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> AlpacaExecution:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connected(self) -> None:
        with self._lock:
            self.connects += 1
            again = self.connects > 1
            # updates sent before this connection are lost: read back what may have changed
            # (after a reconnect, or since a restore read the orders and the stream came up)
            self._resync = self._resync or again or bool(self.tracker.open_ids())
            self._lock.notify_all()
        if again and self.on_reconnect is not None:
            self.on_reconnect()

    def is_connected(self) -> bool:
        """Whether the trade updates stream is up now (``/healthz``)."""
        return self._thread is not None and bool(self._stream._running)

    async def _on_update(self, update: Any) -> None:
        with self._lock:
            self.received += 1
            self._inbox += self.tracker.update(update)
            self._lock.notify_all()

    def wait_connected(self, timeout: float) -> bool:
        """True once the stream has connected (tests; the engine does not need to wait)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.connects > 0, timeout)

    # --- REST, through rate limits and outages --------------------------------------------------

    def _call(self, fn, *args: Any) -> Any:
        """``fn(*args)`` (an alpaca-py request) through 429s, which wait for Retry-After, and
        connection errors, which wait a doubling backoff; the last attempt's error is raised."""
        wait = 0.5
        for _ in range(self.attempts - 1):
            try:
                return fn(*args)
            except APIError as exc:
                if exc.status_code != 429:
                    raise
                pause = min(retry_after(exc) or wait, self.max_wait)
                log.warning("Alpaca rate limit: waiting %s s (Retry-After)", pause)
            except RequestException as exc:
                pause = wait
                log.warning("Alpaca unreachable (%s): retrying in %s s", exc, pause)
            time.sleep(pause)
            wait = min(wait * 2, self.max_wait)
        try:
            return fn(*args)
        except RequestException as exc:
            raise AlpacaError(f"cannot reach Alpaca at {self.url}: {exc}") from exc

    # --- the execution interface ----------------------------------------------------------------

    def submit(self, orders: list[Order], step: int) -> list[ev.Event]:
        """POST each order (client order id = the engine's id): accepted or rejected each.
        ``step`` is unused: the broker times orders by its own market."""
        self.connect()
        with self._lock:
            for order in orders:
                self.tracker.track(order)
        symbols = {o.symbol for o in orders}
        if len(symbols) == 1 or self.concurrency == 1:
            return self._send_all(orders)
        by_symbol = {s: [o for o in orders if o.symbol == s] for s in symbols}
        sent = dict(zip(by_symbol, self._pool.map(self._send_all, by_symbol.values()), strict=True))
        answers = {e.client_id: e for events in sent.values() for e in events}
        return [answers[o.client_id] for o in orders if o.client_id in answers]

    def _send_all(self, orders: list[Order]) -> list[ev.Event]:
        return [e for order in orders for e in self._send(order)]

    def _send(self, order: Order) -> list[ev.Event]:
        """POST one order: its answer (accepted or rejected), as the engine times it; anything
        else learned (fills of an order sent before a crash) goes out with the next bar."""
        cid = order.client_id
        try:
            state = self._call(self.client.submit_order, request(order))
        except APIError as exc:
            if exc.status_code == 422 and _code(exc) == TAKEN:  # sent before: ask what it became
                state = self._call(self.client.get_order_by_client_id, cid)
            elif exc.status_code in (403, 422):
                reason = f"rejected by the broker: {exc.message if _code(exc) else exc}"
                rejected = ev.OrderRejected(cid, reason, key=f"rejected:{cid}")
                with self._lock:
                    return self._answers(self.tracker.apply(self.tracker.known[cid], [rejected]))
            else:
                raise
        with self._lock:
            return self._answers(self._take(cid) + self.tracker.settle(state))

    def _answers(self, events: list[ev.Event]) -> list[ev.Event]:
        """The accepts and rejects of ``events``; the rest wait in the inbox (under the lock)."""
        answers = (ev.ORDER_ACCEPTED, ev.ORDER_REJECTED)
        self._inbox += [e for e in events if e.type not in answers]
        return [e for e in events if e.type in answers]

    def _take(self, cid: str, kind: str = ev.ORDER_ACCEPTED) -> list[ev.Event]:
        """The ``kind`` event of ``cid`` the stream brought before the REST answer did (under
        the lock): the answer, taken out of the inbox."""
        mine = [e for e in self._inbox if e.type == kind and getattr(e, "client_id", None) == cid]
        self._inbox = [e for e in self._inbox if e not in mine]
        return mine

    def cancel(self, client_id: str, reason: str, actor: str = "engine") -> ev.Event | None:
        """The broker's confirmation as the simulator words it, or None when it has no such
        working order (unknown, or it filled or ended first: its news comes with ``on_bar``)."""
        with self._lock:
            order = self.tracker.known.get(client_id)
            if order is None or not order.status.is_open:
                return None
            order_id = self.tracker.ids.get(client_id)
        if order_id is None:
            order_id = str(self._call(self.client.get_order_by_client_id, client_id).id)
        with self._lock:
            self.tracker.cancels[client_id] = (reason, actor)
        try:
            self._call(self.client.cancel_order_by_id, order_id)
        except APIError as exc:
            if exc.status_code in (404, 422):
                with self._lock:
                    self.tracker.cancels.pop(client_id, None)
                return None
            raise
        event = ev.OrderCancelled(client_id, reason, actor, key=f"{ev.ORDER_CANCELLED}:{client_id}")
        with self._lock:
            self.tracker.cancels.pop(client_id, None)
            came = self._take(client_id, ev.ORDER_CANCELLED)  # the stream was quicker
            applied = came or self.tracker.apply(self.tracker.known[client_id], [event])
        return event if event in applied else None

    def on_bar(self, bar: CrossSection) -> list[ev.Event]:
        """Every event received since the last call (see :meth:`received`)."""
        return self.take_updates()

    def take_updates(self, read_back: bool = False) -> list[ev.Event]:
        """Every event received since the last call; after a reconnect (updates sent while the
        stream was down are lost at Alpaca), or when asked (``read_back``: a reconciliation
        found a difference that a fill still on its way may explain), the open orders' states
        are read back first."""
        self.connect()
        with self._lock:
            resync, self._resync = self._resync, False
        if resync or read_back:
            self._read_back()
        with self._lock:
            out, self._inbox = self._inbox, []
        return out

    def _read_back(self) -> None:
        """The states of the open orders: one listing from the oldest one's submission, and a
        look-up of each the listing missed."""
        with self._lock:
            open_ids = self.tracker.open_ids()
            since = [self.tracker.created[c] for c in open_ids if c in self.tracker.created]
        if not open_ids:
            return
        found = {}
        if since:
            query = GetOrdersRequest(status=QueryOrderStatus.ALL, limit=PAGE, direction="asc",
                                     after=min(since) - timedelta(seconds=1))  # fmt: skip
            found = {o.client_order_id: o for o in self._call(self.client.get_orders, query)}
        for cid in open_ids:
            state = found.get(cid) or self._lookup(cid)
            if state is not None:
                with self._lock:
                    self._inbox += self.tracker.settle(state)
        log.info("Alpaca stream (re)connected: %d open orders read back", len(open_ids))

    def _lookup(self, cid: str) -> Any:
        try:
            return self._call(self.client.get_order_by_client_id, cid)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise

    def restore(self, orders: list[Order], steps: dict[str, int]) -> list[ev.Event]:
        """After a restart: each of the journal's open orders is asked about by its client id;
        the broker's state settles it, and only an unacknowledged one the broker does not know
        is sent again. An accepted one it does not know raises an alert."""
        self.connect()
        out: list[ev.Event] = []
        for order in orders:
            with self._lock:
                self.tracker.track(order)
            state = self._lookup(order.client_id)
            if state is None and order.status == OrderStatus.SUBMITTED:
                out += self._send(order)
            elif state is None:
                cid = order.client_id
                why = f"the broker does not know order {cid}, which the journal has {order.status}"
                out.append(alert(order.account, "unknown_at_broker", why, cid))
            else:
                with self._lock:
                    out += self._take(order.client_id) + self.tracker.settle(state)
        return out

    def observe(self, bar: CrossSection) -> None:
        """Nothing to do: the broker models its own market."""

    def journaled(self) -> None:
        """Nothing to let go: the broker keeps every order's state, which ``restore`` reads."""

    # --- reconciliation -------------------------------------------------------------------------

    def broker_state(self) -> BrokerState:
        """Positions, cash and open orders as the broker reports them now."""
        positions = {p.symbol: (float(p.qty), float(p.avg_entry_price))
                     for p in self._call(self.client.get_all_positions)}  # fmt: skip
        cash = float(self._call(self.client.get_account).cash)
        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=PAGE)
        orders = {o.client_order_id: _open(o) for o in self._call(self.client.get_orders, query)}
        return BrokerState(positions, cash, orders, datetime.now(UTC))


def retry_after(exc: APIError) -> float | None:
    """A 429's Retry-After in seconds (None: absent, or an HTTP date - the backoff decides)."""
    after = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(after) if after else None
    except ValueError:
        return None


def _code(exc: APIError) -> int | None:
    try:
        return int(exc.code)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _open(o: Any) -> tuple:
    """An open order as ``BrokerState`` lists it."""
    side, kind = str(o.side.value), str(o.order_type.value)
    limit, stop = _float(o.limit_price), _float(o.stop_price)
    return (o.symbol, side, float(o.qty), float(o.filled_qty or 0), kind, limit, stop)
