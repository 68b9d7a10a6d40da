"""The stand-in Alpaca market spoken to by the real alpaca-py clients: historical bars over
REST (pagination, only what the clock reached), bars over the data WebSocket (msgpack), keys
checked, a dropped stream the client reconnects to; orders filled as the simulator fills them,
trade updates, duplicates, rejects, cancels and 429s."""

from __future__ import annotations

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from tests.support.alpaca import DAY0, KEY, SECRET, Running, daily_bars, wait_for
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.broker import SimulatedBroker
from trading_runtime.domain import Order, Side
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel

SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture
def standin():
    with StandIn(Market(daily_bars(SYMBOLS, 10)), KEY, SECRET, page_size=4) as s:
        yield s


def history(standin, key=KEY, secret=SECRET, **kw):
    client = StockHistoricalDataClient(key, secret, url_override=standin.url)
    request = StockBarsRequest(symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Day, start=DAY0, **kw)
    return client.get_stock_bars(request)


def test_history_pages_through_what_the_clock_reached(standin):
    for _ in range(5):
        standin.market.advance()
    got = history(standin).df.reset_index()
    frame = standin.market.frame
    want = frame[frame["ts"] <= frame["ts"].unique()[4]]
    assert len(got) == 15  # 5 days x 3 symbols, over 4 pages of 4
    assert sorted(got["symbol"].unique()) == SYMBOLS
    merged = got.merge(want, left_on=["symbol", "timestamp"], right_on=["symbol", "ts"])
    assert len(merged) == 15
    assert (merged["open_x"] == merged["open_y"]).all()
    assert (merged["close_x"] == merged["close_y"]).all()


def test_history_refuses_wrong_keys_and_another_timeframe(standin):
    standin.market.advance()
    with pytest.raises(APIError) as caught:
        history(standin, secret="wrong")
    assert caught.value.status_code == 401
    client = StockHistoricalDataClient(KEY, SECRET, url_override=standin.url)
    minutes = StockBarsRequest(symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Minute, start=DAY0)
    with pytest.raises(APIError, match="serves 1Day bars"):
        client.get_stock_bars(minutes)


def test_stream_delivers_subscribed_bars_and_survives_a_drop(standin):
    got = []

    async def on_bar(bar):
        got.append(bar)

    stream = StockDataStream(KEY, SECRET, url_override=standin.data_stream_url)
    stream.subscribe_bars(on_bar, "AAA", "CCC")
    with Running(stream):
        wait_for(lambda: standin.market._bar_listeners)
        standin.market.advance()
        wait_for(lambda: len(got) == 2)
        first = standin.market.cross_section(0)
        assert [(b.symbol, b.open, b.close) for b in sorted(got, key=lambda b: b.symbol)] == [
            ("AAA", first.open[0], first.close[0]),
            ("CCC", first.open[2], first.close[2]),
        ]
        assert got[0].timestamp == first.ts
        standin.market.drop_streams()
        wait_for(lambda: not standin.market._bar_listeners)
        wait_for(lambda: standin.market._bar_listeners)  # the client came back
        standin.market.advance()
        wait_for(lambda: len(got) == 4)
        assert {b.timestamp for b in got[2:]} == {standin.market.times[1]}


def test_trade_updates_refuse_wrong_keys(standin):
    stream = TradingStream(KEY, "wrong", url_override=standin.stream_url)

    async def on_update(update):
        raise AssertionError("no update may come to a client that did not authenticate")

    stream.subscribe_trade_updates(on_update)
    with Running(stream):
        wait_for(lambda: standin.market.refused > 0)
        trading(standin).submit_order(buy("acct-1-AAA"))
        assert not standin.market._update_listeners


def test_stream_refuses_wrong_keys(standin):
    stream = StockDataStream(KEY, "wrong", url_override=standin.data_stream_url)

    async def on_bar(bar):
        raise AssertionError("no bar may come to a client that did not authenticate")

    stream.subscribe_bars(on_bar, "AAA")
    with Running(stream):
        wait_for(lambda: standin.market.refused > 0)
        standin.market.advance()
        assert not standin.market._bar_listeners


# --- the trading side ------------------------------------------------------------------------


def trading(standin) -> TradingClient:
    return TradingClient(KEY, SECRET, url_override=standin.url)


def buy(cid: str, symbol: str = "AAA", qty: float = 10, **kw) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY,
                              time_in_force=TimeInForce.GTC, client_order_id=cid, **kw)  # fmt: skip


def test_orders_fill_at_the_next_open_as_the_simulator_fills(standin):
    client, market = trading(standin), standin.market
    updates = []

    async def on_update(update):
        updates.append(update)

    stream = TradingStream(KEY, SECRET, url_override=standin.stream_url)
    stream.subscribe_trade_updates(on_update)
    with Running(stream):
        wait_for(lambda: market._update_listeners)
        market.advance()
        placed = client.submit_order(buy("acct-1-AAA"))
        assert (placed.status, placed.client_order_id) == ("new", "acct-1-AAA")
        market.advance()
        wait_for(lambda: len(updates) == 2)
    assert [u.event for u in updates] == ["new", "fill"]
    simulator = SimulatedBroker(CostModel(), {s: Instrument(s) for s in SYMBOLS}, SYMBOLS)
    simulator.submit([Order("acct-1-AAA", "acct", "AAA", Side.BUY, 10.0)], 0)
    [filled] = simulator.on_bar(market.cross_section(1))
    fill = updates[1]
    assert (fill.price, fill.qty, fill.timestamp) == (filled.fill.price, 10, market.times[1])
    [position] = client.get_all_positions()
    assert (position.symbol, float(position.qty)) == ("AAA", 10)
    cash = float(client.get_account().cash)
    assert cash == pytest.approx(100_000 - 10 * filled.fill.price - filled.fill.fee)
    assert client.get_order_by_client_id("acct-1-AAA").status == "filled"
    assert market.desk.arrived["acct-1-AAA"] > 0  # wall time of arrival, for bench latency


def test_duplicates_rejects_cancels_and_rate_limits(standin):
    client, market = trading(standin), standin.market
    market.advance()
    client.submit_order(buy("acct-1-AAA"))
    with pytest.raises(APIError) as duplicate:
        client.submit_order(buy("acct-1-AAA"))
    assert duplicate.value.status_code == 422 and "unique" in duplicate.value.message
    market.misbehave(reject_symbols=["BBB"])
    with pytest.raises(APIError) as rejected:
        client.submit_order(buy("acct-2-BBB", "BBB"))
    assert rejected.value.status_code == 422
    [open_order] = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert client.get_order_by_id(open_order.id).client_order_id == "acct-1-AAA"
    client.cancel_order_by_id(open_order.id)
    assert client.get_order_by_client_id("acct-1-AAA").status == "canceled"
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    client.submit_order(buy("acct-3-CCC", "CCC"))
    client.submit_order(buy("acct-4-AAA", "AAA"))
    cancelled = client.cancel_orders()
    assert sorted(str(c.id) for c in cancelled) == sorted(
        str(client.get_order_by_client_id(cid).id) for cid in ("acct-3-CCC", "acct-4-AAA")
    )
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert {o.client_order_id: o.status for o in closed} == {
        "acct-1-AAA": "canceled", "acct-3-CCC": "canceled", "acct-4-AAA": "canceled"}  # fmt: skip
    assert client.get_clock().timestamp == standin.market.times[0]
    client._retry = 0  # alpaca-py would retry a 429 after a fixed 3 s itself
    market.misbehave(rate_limited=1, retry_after=7)
    with pytest.raises(APIError) as limited:
        client.get_account()
    assert limited.value.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert client.get_account().status == "ACTIVE"  # one request only was limited


def test_admin_endpoints_and_the_pacing_clock(standin):
    admin = lambda action, **body: requests.post(f"{standin.url}/admin/{action}", json=body)  # noqa: E731
    assert admin("advance").json()["ts"] == "2024-01-02T05:00:00Z"
    admin("misbehave", reject_symbols=["AAA"], rate_limited=1)
    admin("position", symbol="BBB", qty=3, avg_price=9.5)
    client = trading(standin)
    client._retry = 0
    with pytest.raises(APIError):
        client.get_all_positions()  # the one rate-limited request
    [position] = client.get_all_positions()
    assert (position.symbol, float(position.qty), float(position.avg_entry_price)) == (
        "BBB",
        3,
        9.5,
    )
    with pytest.raises(APIError, match="not tradable"):
        client.submit_order(buy("acct-1-AAA"))
    assert admin("nonsense").status_code == 404
    client.submit_order(buy("acct-2-BBB", "BBB"))
    arrived = requests.get(f"{standin.url}/admin/arrivals").json()
    assert list(arrived) == ["acct-2-BBB"] and arrived["acct-2-BBB"] > 0
    standin.market.start(bars_per_second=200)
    wait_for(lambda: standin.market.step == len(standin.market.times) - 1)
    standin.market.stop()
    assert standin.market.advance() is None  # the bars ran out
