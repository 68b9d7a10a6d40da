"""YahooProvider's mapping of a yfinance answer onto raw bars. yfinance cannot reach Yahoo from
this machine and is an optional extra (not installed here), so this one test puts a stand-in
``yfinance`` module in ``sys.modules`` that answers ``Ticker(symbol).history(...)`` with a frame
shaped like yfinance's (capitalised columns, a tz-aware index named Datetime or Date). It is the
only fake of this part: every other test runs the real clients against the local stand-in."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

from warehouse.live import open_source
from warehouse.live.polling import PollingSource
from warehouse.providers.vendor import YahooProvider
from warehouse.settings import VendorSettings
from warehouse.validation import validate_bars


def yfinance_answer(index_name: str, adj: bool) -> pd.DataFrame:
    index = pd.DatetimeIndex(
        ["2024-03-01 09:30", "2024-03-01 09:31"], tz="America/New_York", name=index_name
    )
    frame = pd.DataFrame(
        {
            "Open": [10.0, 10.2],
            "High": [10.5, 10.4],
            "Low": [9.9, 10.1],
            "Close": [10.2, 10.3],
            "Volume": [1000, 1200],
            "Dividends": [0.0, 0.0],
            "Stock Splits": [0.0, 0.0],
        },
        index=index,
    )
    if adj:
        frame.insert(4, "Adj Close", [5.1, 5.15])
    return frame


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    seen: list[dict] = []

    class Ticker:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        def history(self, **kwargs) -> pd.DataFrame:
            seen.append({"symbol": self.symbol, **kwargs})
            intraday = kwargs.get("interval") == "1m"
            return yfinance_answer("Datetime" if intraday else "Date", adj=not intraday)

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(Ticker=Ticker))
    return seen


def test_a_poll_asks_for_the_recent_window_and_maps_intraday_bars(calls):
    raw = YahooProvider(interval="1m", period="5d").load(["AAPL"])
    assert calls == [{"symbol": "AAPL", "period": "5d", "interval": "1m", "auto_adjust": False}]
    result = validate_bars(raw.frame)
    assert result.quarantine.empty
    assert list(result.good["ts"]) == list(
        pd.to_datetime(["2024-03-01 14:30", "2024-03-01 14:31"], utc=True)
    )
    assert list(result.good["close"]) == [10.2, 10.3]


def test_daily_bars_are_adjusted_by_adj_close(calls):
    raw = YahooProvider(start="2024-01-01").load(["MSFT"])
    assert calls[0]["start"] == "2024-01-01" and "period" not in calls[0]
    good = validate_bars(raw.frame).good
    assert list(good["close"]) == pytest.approx([5.1, 5.15])


def test_the_yahoo_feed_polls_yahoo_with_the_settings(calls):
    vendor = VendorSettings(frequency="1min", yahoo_period="1d", poll_seconds=30)
    source = open_source("yahoo", ["IBM"], vendor)
    assert isinstance(source, PollingSource) and source.every == 30
    source.provider.load(["IBM"])
    assert calls[0]["period"] == "1d" and calls[0]["interval"] == "1m"
