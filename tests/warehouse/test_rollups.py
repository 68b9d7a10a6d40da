"""Weekly bars and intraday bars resampled to daily: the same relations, columns and rows on both
backends (continuous aggregates on TimescaleDB, a materialized view and a view on the
partitioned fallback), by each symbol's exchange-local date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.support.db import table_rows
from warehouse.ingest import ingest
from warehouse.providers import SyntheticMarket
from warehouse.providers.base import FrameProvider, Instrument, RawBars
from warehouse.rollups import refresh_rollups
from warehouse.schema import bars_storage
from warehouse.settings import WarehouseSettings

COLUMNS = ["symbol", "day", "open", "high", "low", "close", "volume", "bars"]


@pytest.fixture(params=["partitioned", "timescaledb"])
def backend_url(request) -> str:
    """A migrated database on the embedded server, then on the TimescaleDB server."""
    return request.getfixturevalue("db_url" if request.param == "partitioned" else "tsdb_url")


def intraday() -> RawBars:
    """15-minute bars of two symbols, one traded in Tokyo (its session crosses UTC midnight in
    local time) and one in New York."""
    frame = SyntheticMarket(n_symbols=2, n_bars=26 * 15, freq="15min", seed=4).generate()
    zones = {"SYN0000": "Asia/Tokyo", "SYN0001": "America/New_York"}
    instruments = [Instrument(s, exchange_tz=z) for s, z in zones.items()]
    return RawBars(frame, "intraday", "test", instruments)


def expected_daily(frame: pd.DataFrame, zones: dict[str, str]) -> pd.DataFrame:
    """OHLCV per symbol and exchange-local date, computed by pandas."""
    local = frame.assign(
        day=[ts.tz_convert(zones[s]).date() for s, ts in zip(frame.symbol, frame.ts, strict=True)]
    ).sort_values(["symbol", "ts"])
    grouped = local.groupby(["symbol", "day"], sort=True)
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        bars=("ts", "size"),
    )
    return out.reset_index()


def read(url: str, relation: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from {relation} order by 1, 2")
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def test_intraday_bars_resampled_to_daily(backend_url):
    raw = intraday()
    ingest(FrameProvider(raw), backend_url, WarehouseSettings())
    with psycopg.connect(backend_url, autocommit=True) as conn:
        refresh_rollups(conn)
    got = read(backend_url, "market.bars_daily")
    assert list(got.columns) == COLUMNS
    zones = {i.symbol: i.exchange_tz for i in raw.instruments}
    want = expected_daily(raw.frame.assign(ts=raw.frame.ts.dt.tz_convert("UTC")), zones)
    pd.testing.assert_frame_equal(
        got.astype({"bars": "int64"}), want.astype({"bars": "int64"}), check_exact=False
    )


WEEKLY_TODAY = """
select symbol, date_trunc('week', local_date)::date as week,
    (array_agg(open order by ts))[1] as open, max(high) as high, min(low) as low,
    (array_agg(close order by ts))[count(*)] as close, sum(volume) as volume, count(*) as bars
from (select b.*, (b.ts at time zone i.exchange_tz)::date as local_date
      from market.bars b join market.instruments i using (symbol)) s
group by 1, 2 order by 1, 2
"""


def test_weekly_bars_as_the_dbt_model_computed_them(backend_url, bundled):
    ingest(FrameProvider(bundled), backend_url, WarehouseSettings())
    with psycopg.connect(backend_url, autocommit=True) as conn:
        refresh_rollups(conn)
        want = conn.execute(WEEKLY_TODAY).fetchall()
    got = table_rows(backend_url, "market.bars_weekly")
    assert len(got) == len(want) > 2000
    assert got == want


def test_corrected_bars_reach_the_rollups(backend_url, bundled):
    ingest(FrameProvider(bundled), backend_url, WarehouseSettings())
    with psycopg.connect(backend_url, autocommit=True) as conn:
        refresh_rollups(conn)
    frame = bundled.frame
    fix = frame[(frame.symbol == "MSFT") & (frame.ts == "2004-02-11")]
    fix = fix.assign(high=fix.high * 1.5)
    ingest(FrameProvider(RawBars(fix, "fix", "test")), backend_url, WarehouseSettings())
    with psycopg.connect(backend_url, autocommit=True) as conn:
        if bars_storage(backend_url) == "partitioned":
            refresh_rollups(conn)  # as a feature build does; TimescaleDB's are up to date
        rows = conn.execute(
            "select d.high, w.high from market.bars_daily d join market.bars_weekly w "
            "on w.symbol = d.symbol and w.week = date_trunc('week', d.day)::date "
            "where d.symbol = 'MSFT' and d.day = '2004-02-11'"
        ).fetchall()
        stored = conn.execute(
            "select high from market.bars where symbol = 'MSFT' and ts::date = '2004-02-11'"
        ).fetchone()[0]
    assert rows == [(stored, stored)]
    assert np.isclose(stored, fix.high.iloc[0] * fix.adj_close.iloc[0] / fix.close.iloc[0])
