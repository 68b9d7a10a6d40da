"""A local stand-in for Alpaca, for tests and the demo: the subset of its protocols that
alpaca-py speaks, served on 127.0.0.1 so the real clients can be pointed at it
(``url_override``). The outside world is not reachable from here, and a test must be able to
make the market misbehave; this is how the adapters meet a market without one.

- market data REST: ``GET /v2/stocks/bars`` (symbols, timeframe, start, end, limit,
  page_token; only bars the clock has reached);
- market data WebSocket ``/v2/{feed}`` (msgpack: connected, auth, subscribe, bars);
- trading REST: ``/v2/account``, ``/v2/positions``, ``/v2/orders`` (POST, GET with a status
  filter, DELETE all), ``/v2/orders/{id}`` (GET, DELETE), ``/v2/orders:by_client_order_id``,
  ``/v2/clock``;
- the trade updates WebSocket ``/stream`` (JSON: authenticate, listen, trade_updates);
- ``/admin/*`` (no keys: loopback only) to advance the clock and misbehave.

Requests without the configured key id and secret are refused (401), as Alpaca does."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from trading_runtime.alpaca.desk import Reply, error
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.streams import data_stream, trade_stream
from trading_runtime.alpaca.wire import bar_json, iso

MAX_PAGE = 10_000


def reply(answer: Reply) -> Response:
    status, body = answer
    return Response(status_code=204) if body is None else JSONResponse(body, status_code=status)


def when(text: str | None) -> pd.Timestamp | None:
    """An RFC 3339 time or date from a query; naive ones are UTC (as Alpaca reads them)."""
    if not text:
        return None
    ts = pd.Timestamp(text)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


class Keys(BaseHTTPMiddleware):
    """The key headers on every /v2 request; a rate limit on the trading ones when asked."""

    async def dispatch(self, request: Request, call_next):
        path = request.url.path
        if path.startswith("/v2"):
            app = request.app.state
            headers = request.headers
            given = (headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY"))
            if given != app.keys:
                return reply(error(401, 40110000, "request is not authorized"))
            if not path.startswith("/v2/stocks"):
                bad = app.market.desk.bad
                with app.market.lock:
                    limited = bad.rate_limited > 0
                    bad.rate_limited -= limited
                if limited:
                    response = reply(error(429, 42910000, "rate limit exceeded"))
                    response.headers["Retry-After"] = str(bad.retry_after)
                    return response
        return await call_next(request)


async def bars(request: Request) -> Response:
    q = request.query_params
    market: Market = request.app.state.market
    if q.get("timeframe", market.timeframe) != market.timeframe:
        asked = q.get("timeframe")
        return reply(
            error(422, 42210000, f"this stand-in serves {market.timeframe} bars, not {asked}")
        )
    symbols = [s for s in q.get("symbols", "").split(",") if s]
    frame = market.history(symbols, when(q.get("start")), when(q.get("end")))
    offset = int(q.get("page_token") or 0)
    limit = min(int(q.get("limit") or 1000), request.app.state.page_size)
    page = frame.iloc[offset : offset + limit]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in page.to_dict("records"):
        out.setdefault(row["symbol"], []).append(bar_json(row))
    more = offset + limit < len(frame)
    return JSONResponse({"bars": out, "next_page_token": str(offset + limit) if more else None,
                         "currency": "USD"})  # fmt: skip


async def orders(request: Request) -> Response:
    market: Market = request.app.state.market
    if request.method == "POST":
        try:
            body = await request.json()
        except ClientDisconnect:  # the client died mid-request (a test's SIGKILL): no order
            return Response(status_code=499)
        return reply(market.trade(lambda d, step, now: d.submit(body, step, now)))
    if request.method == "DELETE":
        return reply(market.trade(lambda d, step, now: d.cancel_all(now)))
    q = request.query_params
    limit, after, asc = int(q.get("limit") or 50), when(q.get("after")), q.get("direction") == "asc"
    status, symbols = q.get("status", "open"), q.get("symbols")
    with market.lock:
        return reply(market.desk.listing(status, limit, after, symbols, asc))


async def one_order(request: Request) -> Response:
    market: Market = request.app.state.market
    order_id = request.path_params["order_id"]
    if request.method == "DELETE":
        return reply(market.trade(lambda d, step, now: d.cancel(order_id, now)))
    with market.lock:
        return reply(market.desk.find(order_id))


async def by_client_id(request: Request) -> Response:
    market: Market = request.app.state.market
    with market.lock:
        return reply(market.desk.find(request.query_params.get("client_order_id", ""), True))


async def account(request: Request) -> Response:
    with request.app.state.market.lock:
        return reply(request.app.state.market.desk.account())


async def positions(request: Request) -> Response:
    with request.app.state.market.lock:
        return reply(request.app.state.market.desk.position_list())


async def clock(request: Request) -> Response:
    now = request.app.state.market.now
    return JSONResponse({"timestamp": iso(now), "is_open": True,
                         "next_open": iso(now + timedelta(days=1)),
                         "next_close": iso(now + timedelta(hours=6, minutes=30))})  # fmt: skip


async def admin(request: Request) -> Response:
    """Loopback control: advance, drop the streams, misbehave, inject a position."""
    market: Market = request.app.state.market
    action = request.path_params["action"]
    body = await request.json() if action in ("misbehave", "position") else {}
    if action == "advance":
        ts = market.advance()
        return JSONResponse({"ts": None if ts is None else iso(ts)})
    if action == "drop":
        market.drop_streams()
    elif action == "misbehave":
        market.misbehave(**body)
    elif action == "position":
        with market.lock:
            market.desk.inject_position(
                body["symbol"], float(body["qty"]), float(body["avg_price"])
            )
    else:
        return reply(error(404, 40410000, f"no admin action {action}"))
    return JSONResponse({"ok": True})


async def arrivals(request: Request) -> Response:
    """Loopback: the wall time (time.time()) each order arrived, by client order id."""
    market: Market = request.app.state.market
    with market.lock:
        return JSONResponse(dict(market.desk.arrived))


def app(market: Market, key_id: str, secret: str, page_size: int = MAX_PAGE) -> Starlette:
    routes = [
        Route("/v2/stocks/bars", bars),
        Route("/v2/orders", orders, methods=["GET", "POST", "DELETE"]),
        Route("/v2/orders:by_client_order_id", by_client_id),
        Route("/v2/orders/{order_id}", one_order, methods=["GET", "DELETE"]),
        Route("/v2/account", account),
        Route("/v2/positions", positions),
        Route("/v2/clock", clock),
        Route("/admin/arrivals", arrivals),
        Route("/admin/{action}", admin, methods=["POST"]),
        WebSocketRoute("/stream", trade_stream),
        WebSocketRoute("/v2/{feed}", data_stream),
    ]
    application = Starlette(routes=routes)
    application.add_middleware(Keys)
    application.state.market, application.state.keys = market, (key_id, secret)
    application.state.page_size = page_size
    return application


class StandIn:
    """The stand-in served on 127.0.0.1 from a thread: ``with StandIn(market) as s:`` then
    point alpaca-py at ``s.url`` (REST), ``s.data_stream_url`` and ``s.stream_url``."""

    def __init__(
        self,
        market: Market,
        key_id: str = "standin-key",
        secret: str = "standin-secret",
        port: int = 0,
        page_size: int = MAX_PAGE,
    ) -> None:
        """``page_size``: the most bars one /v2/stocks/bars page holds (Alpaca: 10,000)."""
        self.market, self.key_id, self.secret = market, key_id, secret
        config = uvicorn.Config(
            app(market, key_id, secret, page_size),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="standin", daemon=True)
        self.port = port

    def start(self) -> StandIn:
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the stand-in market did not start (see its log)")
            self._thread.join(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        self.market.stop()
        self.market.drop_streams()
        self.server.should_exit = True
        self._thread.join()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"
