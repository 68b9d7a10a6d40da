"""Databases for runtime tests: the bundled sample's bars (no feature build: the engine computes
its features online), or a few hand-made bars whose every fill can be computed by hand."""

from __future__ import annotations

import pytest

from tests.support.bars import hand_bars, load_bars
from tests.support.db import copy_database


@pytest.fixture(scope="session")
def market_template(pg_server, migrated_template, bundled) -> str:
    url = copy_database(pg_server, migrated_template)
    load_bars(url, bundled)
    return url


@pytest.fixture(scope="module")
def market(pg_server, market_template) -> str:
    return copy_database(pg_server, market_template)


@pytest.fixture
def hand_market(pg_server, migrated_template):
    """A database for bars a test writes itself (``load(rows)``)."""
    url = copy_database(pg_server, migrated_template)

    def load(rows: list[tuple], symbol: str = "TEST") -> str:
        load_bars(url, hand_bars(rows, symbol))
        return url

    return load
