"""Databases for runtime tests: a few hand-made bars whose every fill can be computed by hand
(the bundled sample's bars are the root conftest's ``market``)."""

from __future__ import annotations

import pytest

from tests.support.bars import hand_bars, load_bars
from tests.support.db import copy_database


@pytest.fixture
def hand_market(pg_server, migrated_template):
    """A database for bars a test writes itself (``load(rows)``)."""
    url = copy_database(pg_server, migrated_template)

    def load(rows: list[tuple], symbol: str = "TEST") -> str:
        load_bars(url, hand_bars(rows, symbol))
        return url

    return load
