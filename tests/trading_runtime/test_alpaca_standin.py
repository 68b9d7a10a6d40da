"""The stand-in Alpaca market spoken to by the real alpaca-py clients: historical bars over
REST (pagination, only what the clock reached), bars over the data WebSocket (msgpack), keys
checked, and a dropped stream the client reconnects to."""

from __future__ import annotations

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from tests.support.alpaca import DAY0, KEY, SECRET, Running, daily_bars, wait_for
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn

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


def test_history_refuses_wrong_keys(standin):
    standin.market.advance()
    with pytest.raises(APIError) as caught:
        history(standin, secret="wrong")
    assert caught.value.status_code == 401


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


def test_stream_refuses_wrong_keys(standin):
    stream = StockDataStream(KEY, "wrong", url_override=standin.data_stream_url)

    async def on_bar(bar):
        raise AssertionError("no bar may come to a client that did not authenticate")

    stream.subscribe_bars(on_bar, "AAA")
    with Running(stream):
        wait_for(lambda: stream._loop is not None)
        standin.market.advance()
        assert not standin.market._bar_listeners
