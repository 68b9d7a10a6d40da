"""Feature-store fixtures: bundled bars loaded into a test database, feature tables as frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd
import psycopg
import pytest

from warehouse.ingest import ingest
from warehouse.providers.base import RawBars
from warehouse.providers.bundled import BundledProvider


@dataclass
class FrameProvider:
    """Bars already in memory (a slice or an edit of a real source), behind the provider API."""

    raw: RawBars
    name: str = "frame"

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        return self.raw


@pytest.fixture(scope="session")
def bundled() -> RawBars:
    return BundledProvider().load()


def load_bars(url: str, raw: RawBars, keep: Callable[[pd.DataFrame], pd.Series] | None = None):
    """Ingest ``raw`` (optionally only rows where ``keep`` is true) through the real loader."""
    frame = raw.frame if keep is None else raw.frame[keep(raw.frame)].reset_index(drop=True)
    report = ingest(FrameProvider(replace(raw, frame=frame, original=None)), url)
    assert report.quarantined == 0
    return report


def read_table(url: str, table: str, where: str = "true") -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from {table} where {where} order by symbol, ts")
        columns = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


@pytest.fixture(scope="module")
def built(pg_server, bundled):
    """A database with the whole bundled sample and a full feature build (read-only, per module)."""
    from tests.conftest import _fresh_database
    from transforms.dbt_runner import build
    from warehouse.schema import migrate

    url = _fresh_database(pg_server)
    migrate(url)
    load_bars(url, bundled)
    report = build(url, full_refresh=True)
    assert report.success, [(n.name, n.message) for n in report.failures()]
    return url, report
