"""Alpaca as a live source, with the real alpaca-py clients pointed at the local stand-in
market (trading_runtime.alpaca.standin): the REST backfill equals the stand-in's bars, streamed
bars land in market.bars through validation (a bad bar is quarantined with its reason), a gap
left by a dropped stream is backfilled after the reconnect, reconnect waits grow, and the
secret key is never logged."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pandas as pd
import pytest

from core.errors import ConfigError
from tests.support.alpaca import DAY0, KEY, SECRET
from tests.support.service import free_port
from tests.support.vendors import (
    SYMBOLS,
    eventually,
    minute_bars,
    published,
    quarantined,
    running,
    stored,
)
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn
from warehouse.ingest import ingest
from warehouse.live.alpaca import AlpacaSource
from warehouse.live.backoff import Backoff
from warehouse.providers.alpaca import AlpacaProvider
from warehouse.settings import AlpacaSettings, VendorSettings, WarehouseSettings

# the stand-in's bars are from 2024: a symbol with nothing stored is backfilled that far back
VENDOR = VendorSettings(frequency="1min", backfill_days=3650, batch_seconds=0.02)


def settings_for(standin: StandIn, secret: str = SECRET, **changes) -> AlpacaSettings:
    urls = {"data_url": standin.url, "data_stream_url": standin.data_stream_url}
    return AlpacaSettings(key_id=KEY, secret_key=secret, **(urls | changes))


def source_for(standin: StandIn, **changes) -> AlpacaSource:
    backoff = Backoff(0.05, 0.5, 0.5, random.Random(5))
    return AlpacaSource(SYMBOLS, settings_for(standin, **changes), VENDOR, backoff)


@pytest.fixture
def standin():
    with StandIn(Market(minute_bars(8), timeframe="1Min"), KEY, SECRET, page_size=5) as s:
        yield s


def test_backfill_equals_the_standins_bars(standin: StandIn, db_url: str):
    for _ in range(6):
        standin.market.advance()
    provider = AlpacaProvider(settings_for(standin), "1min", start=DAY0)
    report = ingest(provider, db_url, WarehouseSettings(), SYMBOLS)
    assert report.quarantined == 0 and report.inserted == 18
    assert stored(db_url) == published(standin.market)


def test_streamed_bars_are_validated_and_a_bad_one_quarantined(db_url: str):
    bars = minute_bars(6)
    bad = (bars["symbol"] == "BBB") & (bars["ts"] == bars["ts"].unique()[3])
    bars.loc[bad, "high"] = bars.loc[bad, "low"] / 2  # high below low: not a bar
    with StandIn(Market(bars, timeframe="1Min"), KEY, SECRET) as standin:
        standin.market.advance()
        source = source_for(standin)
        with running(source, db_url) as failures:
            # backfilled at start and once the subscription was acknowledged
            eventually(lambda: source.stats.backfills == 2 and len(stored(db_url)) == 3)
            for _ in range(5):
                standin.market.advance()
            eventually(lambda: source.stats.streamed == 15 and len(stored(db_url)) == 17)
        assert not failures
        want = [r for r in published(standin.market) if not (r[0] == "BBB" and r[3] < r[4])]
    assert stored(db_url) == want
    [(symbol, reason, source_name)] = quarantined(db_url)
    assert (symbol, source_name) == ("BBB", "alpaca") and "high >= max(open, close)" in reason
    assert source.stats.backfilled == 3  # the first bars; the 5 after came by the stream


def test_a_gap_left_by_a_dropped_stream_is_backfilled(standin: StandIn, db_url: str):
    market = standin.market
    market.advance()
    source = source_for(standin)
    with running(source, db_url) as failures:
        eventually(lambda: source.stats.backfills == 2)
        market.advance()
        eventually(lambda: len(stored(db_url)) == 6)
        with market.lock:  # the client cannot subscribe again before both bars are out
            market.drop_streams()
            market.advance()
            market.advance()
        eventually(lambda: source.stats.backfills == 3 and len(stored(db_url)) == 12)
        market.advance()
        eventually(lambda: len(stored(db_url)) == 15 and source.stats.streamed == 6)
        assert source.stats.connected and source.stats.last_load_at is not None
    assert not failures and not source.stats.connected  # stopped
    assert stored(db_url) == published(market)
    # the stream brought steps 2 and 5; the backfills steps 1 (at start), 3 and 4 (the gap)
    assert source.stats.backfilled == 9 and source.stats.connects == 2
    assert len(source.stats.retry_delays) == 1


def test_reconnect_waits_grow_while_the_stream_is_unreachable(standin: StandIn, db_url: str):
    standin.market.advance()
    source = source_for(standin, data_stream_url=f"ws://127.0.0.1:{free_port()}/v2/iex")
    with running(source, db_url) as failures:
        eventually(lambda: len(source.stats.retry_delays) >= 5)
    assert not failures
    delays = source.stats.retry_delays[:5]
    assert delays[:4] == sorted(delays[:4]) and delays[3] > 2 * delays[0]
    assert max(delays) <= 0.5
    assert not source.stats.connected
    assert len(stored(db_url)) == 3  # the REST backfill worked meanwhile


def test_the_secret_is_never_logged(db_url: str, caplog: pytest.LogCaptureFixture):
    secret = "Zq7-very-secret-alpaca-key-91"
    caplog.set_level(logging.DEBUG)
    with StandIn(Market(minute_bars(4), timeframe="1Min"), KEY, secret) as standin:
        standin.market.advance()
        source = source_for(standin, secret=secret)
        with running(source, db_url) as failures:
            eventually(lambda: source.stats.connects == 1)
            standin.market.drop_streams()
            eventually(lambda: source.stats.connects == 2)
            standin.market.advance()
            eventually(lambda: len(stored(db_url)) == 6)
        assert not failures
        # refused keys: an error naming what to fix, without the key
        wrong = source_for(standin, secret=secret[::-1])
        with running(wrong, db_url) as refused:
            eventually(lambda: refused)
        assert isinstance(refused[0], ConfigError) and "QTIS_ALPACA_SECRET_KEY" in str(refused[0])
        assert secret[::-1] not in str(refused[0])
    text = caplog.text
    assert "alpaca" in text.lower() and caplog.records  # the logs were captured
    for form in (secret, secret[::-1]):
        assert form not in text
        # nor any 6 bytes of it in hex, as a frame logger shows the ends of a frame
        spaced = " ".join(f"{b:02x}" for b in form.encode())
        for start in range(0, len(form) - 5):
            assert spaced[3 * start : 3 * start + 17] not in text, f"bytes {start}.. logged"


def test_a_vendor_down_at_start_is_retried_until_it_comes_up(db_url: str):
    port = free_port()
    market = Market(minute_bars(4), timeframe="1Min")
    market.advance()
    down = AlpacaSettings(
        key_id=KEY,
        secret_key=SECRET,
        data_url=f"http://127.0.0.1:{port}",
        data_stream_url=f"ws://127.0.0.1:{port}/v2/iex",
    )
    source = AlpacaSource(SYMBOLS, down, VENDOR, Backoff(0.05, 0.2, 0.5, random.Random(2)))
    with running(source, db_url) as failures:
        eventually(lambda: source.stats.errors >= 2 or failures)
        assert not failures
        with StandIn(market, KEY, SECRET, port=port):
            eventually(lambda: source.stats.connects == 1 and len(stored(db_url)) == 3)
            market.advance()
            eventually(lambda: len(stored(db_url)) == 6)
    assert not failures


def test_a_symbol_far_behind_does_not_drag_the_others_back(standin: StandIn):
    """One request per day of start: a new symbol backfilled days back must not make the
    request of the current ones start there too (at 500 symbols of minute bars, a 5-day
    backfill of every symbol after each reconnect). The bars returned are each symbol's own."""
    market = standin.market
    for _ in range(6):
        market.advance()
    times = market.times
    provider = AlpacaProvider(settings_for(standin), "1min")
    asked: list[tuple[list[str], object]] = []
    get = provider._get

    def recording(request):
        asked.append((sorted(request.symbol_or_symbols), pd.Timestamp(request.start, tz="UTC")))
        return get(request)

    provider._get = recording
    starts = {"AAA": times[3], "BBB": times[4], "CCC": times[0] - timedelta(days=3)}
    raw = provider.since(starts)
    got = {(s, pd.Timestamp(t)) for s, t in zip(raw.frame["symbol"], raw.frame["ts"], strict=True)}
    want = {(s, pd.Timestamp(t)) for s, start in starts.items() for t in times[:6] if t > start}
    assert got == want
    assert sorted(asked) == [
        (["AAA", "BBB"], pd.Timestamp(times[3])),
        (["CCC"], pd.Timestamp(starts["CCC"])),
    ]
