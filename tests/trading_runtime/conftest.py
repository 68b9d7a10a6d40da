"""Databases for runtime tests: a few hand-made bars whose every fill can be computed by hand
(the bundled sample's bars are the root conftest's ``market``)."""

from __future__ import annotations

import pytest

from tests.support.bars import hand_bars, load_bars
from tests.support.db import copy_database
from tests.support.live import load_history
from trading_runtime.fix.venue import FixVenue
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel


@pytest.fixture
def hand_market(pg_server, migrated_template):
    """A database for bars a test writes itself (``load(rows)``)."""
    url = copy_database(pg_server, migrated_template)

    def load(rows: list[tuple], symbol: str = "TEST") -> str:
        load_bars(url, hand_bars(rows, symbol))
        return url

    return load


@pytest.fixture
def live_db(pg_server, migrated_template):
    """A warehouse with 160 sessions of three symbols' history (tests.support.live)."""
    return load_history(copy_database(pg_server, migrated_template))


@pytest.fixture
def raw_venue(settings):
    """An in-process FIX venue of one instrument (X) serving the CompIDs QTIS and RAW, for a
    hand-driven client (``tests.support.venue.logged_on``); ``settings``: the test module's
    FixSettings."""
    instruments = {"X": Instrument("X")}
    with FixVenue(CostModel(), instruments, ["X"], settings, clients=["QTIS", "RAW"]) as venue:
        yield venue
