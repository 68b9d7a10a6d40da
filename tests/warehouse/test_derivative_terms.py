"""Derivative terms in market.instruments: a future's root and expiry and an option's terms are
written by the loader and read back by the runtime; an option without its terms is refused."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from tests.support.bars import hand_bars, load_bars
from tests.support.db import copy_database
from trading_runtime.instruments import load_instruments
from warehouse.providers.base import Instrument

ROWS = [("2024-01-02", 10, 11, 9, 10, 100), ("2024-01-03", 10, 11, 9, 10.5, 100)]
CALL = Instrument(
    "AAPL240119C190", asset_class="option", multiplier=100.0, underlying="AAPL",
    expiry=date(2024, 1, 19), strike=190.0, option_right="call", exercise_style="american",
)  # fmt: skip
FUTURE = Instrument(
    "ESH24", asset_class="future", multiplier=50.0, tick_size=0.25, initial_margin=12_000.0,
    underlying="ES", expiry=date(2024, 3, 15),
)  # fmt: skip


@pytest.fixture
def url(pg_server, migrated_template):
    return copy_database(pg_server, migrated_template)


def test_the_terms_go_in_through_the_loader_and_come_back(url):
    for instrument in (CALL, FUTURE):
        raw = hand_bars(ROWS, instrument.symbol)
        raw.instruments = [instrument]
        load_bars(url, raw)
    found = load_instruments(url, [CALL.symbol, FUTURE.symbol])
    assert found == {CALL.symbol: CALL, FUTURE.symbol: FUTURE}


def test_an_option_without_its_terms_is_refused(url):
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into market.instruments (symbol, asset_class, underlying) values"
            " ('X240119P100', 'option', 'X')"
        )
