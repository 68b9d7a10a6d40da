"""Databases for runtime tests: the bundled sample's bars (no feature build: the engine computes
its features online), or a few hand-made bars whose every fill can be computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import _copy_database
from tests.transforms.conftest import load_bars
from warehouse.providers.base import Instrument, RawBars


@pytest.fixture(scope="session")
def market_template(pg_server, migrated_template, bundled) -> str:
    url = _copy_database(pg_server, migrated_template)
    load_bars(url, bundled)
    return url


@pytest.fixture(scope="module")
def market(pg_server, market_template) -> str:
    return _copy_database(pg_server, market_template)


def hand_bars(rows: list[tuple], symbol: str = "TEST") -> RawBars:
    """(date, open, high, low, close, volume) rows of one symbol."""
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    frame.insert(0, "symbol", symbol)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    return RawBars(frame, "hand", "test", [Instrument(symbol, sector="test")])


@pytest.fixture
def hand_market(pg_server, migrated_template):
    """A database for bars a test writes itself (``load(rows)``)."""
    url = _copy_database(pg_server, migrated_template)

    def load(rows: list[tuple], symbol: str = "TEST") -> str:
        load_bars(url, hand_bars(rows, symbol))
        return url

    return load
