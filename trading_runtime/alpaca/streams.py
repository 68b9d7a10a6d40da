"""The stand-in's two WebSockets, as alpaca-py speaks them: market data in msgpack (connected,
auth, subscribe, then bars ``T: b`` with a msgpack Timestamp ``t``), trade updates in JSON
(authenticate, listen, then ``trade_updates`` messages). Each connection gets its messages from
the market through a queue; the market's ``drop_streams`` closes it (the client reconnects)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgpack
from starlette.websockets import WebSocket, WebSocketDisconnect

from trading_runtime.alpaca.market import Market

DROP = None  # the queue's sentinel: close the connection


def channel(websocket: WebSocket) -> tuple[asyncio.Queue, Callable[[Any], None]]:
    """A queue filled from any thread (the market's lock holder) for this connection."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()
    return queue, lambda item: loop.call_soon_threadsafe(queue.put_nowait, item)


async def receive(websocket: WebSocket, packed: bool) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("bytes") if message.get("bytes") is not None else message.get("text")
    return msgpack.unpackb(raw) if packed else json.loads(raw)


async def pump(websocket: WebSocket, queue: asyncio.Queue, send, on_message) -> None:
    """Send what the market queues while handing what the client sends to ``on_message``."""
    reader = asyncio.ensure_future(_read(websocket, on_message))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                return
            item = getter.result()
            if item is DROP:
                await websocket.close(1001)
                return
            await send(item)
    finally:
        reader.cancel()


async def _read(websocket: WebSocket, on_message) -> None:
    try:
        while True:
            await on_message(await websocket.receive())
    except (WebSocketDisconnect, RuntimeError):
        return


def _authorized(websocket: WebSocket, key: str | None, secret: str | None) -> bool:
    ok = (key, secret) == websocket.app.state.keys
    if not ok:
        market: Market = websocket.app.state.market
        with market.lock:
            market.refused += 1
    return ok


# --- market data -------------------------------------------------------------------------------


def _packed(messages: list[dict[str, Any]]) -> bytes:
    out = []
    for m in messages:
        m = dict(m)
        if "t" in m:
            m["t"] = msgpack.Timestamp.from_datetime(datetime.fromisoformat(m["t"]))
        out.append(m)
    return msgpack.packb(out)


async def data_stream(websocket: WebSocket) -> None:
    market: Market = websocket.app.state.market
    await websocket.accept()
    await websocket.send_bytes(msgpack.packb([{"T": "success", "msg": "connected"}]))
    try:
        auth = await receive(websocket, packed=True)
    except WebSocketDisconnect:
        return
    if auth.get("action") != "auth" or not _authorized(
        websocket, auth.get("key"), auth.get("secret")
    ):
        await websocket.send_bytes(
            msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}])
        )
        await websocket.close(1008)
        return
    await websocket.send_bytes(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
    wanted: set[str] = set()  # minute bars ("bars", T b)
    daily: set[str] = set()  # daily bars ("dailyBars", T d): the stand-in's bars either way
    queue, put = channel(websocket)
    forget = [market.listen(dropped=lambda: put(DROP))]

    async def on_message(message: dict[str, Any]) -> None:
        """A (un)subscribe; the bars listener is added with the first subscription, so a
        bar published after the client's subscription was answered reaches it."""
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        raw = message.get("bytes") or message.get("text")
        request = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
        symbols, days = set(request.get("bars", [])), set(request.get("dailyBars", []))
        if request.get("action") == "subscribe":
            wanted.update(symbols)
            daily.update(days)
            if len(forget) == 1:
                forget.append(market.listen(bars=put))
        elif request.get("action") == "unsubscribe":
            wanted.difference_update(symbols)
            daily.difference_update(days)
        reply = {"T": "subscription", "trades": [], "quotes": [], "bars": sorted(wanted),
                 "dailyBars": sorted(daily)}  # fmt: skip
        await websocket.send_bytes(msgpack.packb([reply]))

    async def send(messages: list[dict[str, Any]]) -> None:
        mine = [m for m in messages if "*" in wanted or m["S"] in wanted]
        mine += [m | {"T": "d"} for m in messages if "*" in daily or m["S"] in daily]
        if mine:
            await websocket.send_bytes(_packed(mine))

    try:
        await pump(websocket, queue, send, on_message)
    finally:
        for undo in forget:
            undo()


# --- trade updates -----------------------------------------------------------------------------


async def trade_stream(websocket: WebSocket) -> None:
    market: Market = websocket.app.state.market
    await websocket.accept()
    try:
        auth = await receive(websocket, packed=False)
    except WebSocketDisconnect:
        return
    data = auth.get("data") or {}
    ok = auth.get("action") in ("auth", "authenticate") and _authorized(
        websocket, data.get("key_id"), data.get("secret_key")
    )
    status = "authorized" if ok else "unauthorized"
    answer = {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
    await websocket.send_text(json.dumps(answer))
    if not ok:
        await websocket.close(1008)
        return
    listening: set[str] = set()
    queue, put = channel(websocket)
    forget = [market.listen(dropped=lambda: put(DROP))]

    async def on_message(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        request = json.loads(message.get("text") or message.get("bytes") or "{}")
        if request.get("action") == "listen":
            listening.clear()
            listening.update(request.get("data", {}).get("streams", []))
            if len(forget) == 1:  # updates from now on: the client listens
                forget.append(market.listen(updates=put))
            reply = {"stream": "listening", "data": {"streams": sorted(listening)}}
            await websocket.send_text(json.dumps(reply))

    async def send(messages: list[dict[str, Any]]) -> None:
        for m in messages:
            if m["stream"] in listening:
                await websocket.send_text(json.dumps(m))

    try:
        await pump(websocket, queue, send, on_message)
    finally:
        for undo in forget:
            undo()
