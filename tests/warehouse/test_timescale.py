"""TimescaleDB used properly (issue 27, part 2): chunk interval from the bar frequency,
compression with reads and loads that stay correct on compressed chunks, policies from settings.

The server tests need PostgreSQL 15 + TimescaleDB (``tsdb_server`` skips with the reason)."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import psycopg
import pytest

from tests.support.timescale import COMPRESSED, compress_old_chunks
from warehouse.ingest import ingest
from warehouse.providers import SyntheticMarket
from warehouse.providers.base import FrameProvider, RawBars
from warehouse.reads import read_bars
from warehouse.settings import WarehouseSettings
from warehouse.timescale import apply_policies, chunk_interval_for

DAILY = 252 / 365  # bars per symbol per calendar day
ONE_MINUTE = 390 * 5 / 7  # a 6.5-hour session, five days a week


@pytest.mark.parametrize(
    ("bars_per_day", "days"),
    [(DAILY, 365), (ONE_MINUTE, 1), (ONE_MINUTE / 5, 7), (7 * 5 / 7, 90), (1 / 7, 365)],
)
def test_chunk_interval_follows_the_bar_frequency(bars_per_day, days):
    assert chunk_interval_for(bars_per_day) == timedelta(days=days)


def _interval(url: str) -> timedelta:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select time_interval from timescaledb_information.dimensions "
            "where hypertable_schema = 'market' and hypertable_name = 'bars'"
        ).fetchone()[0]


def test_daily_bars_get_yearly_chunks(tsdb_url, bundled):
    assert _interval(tsdb_url) == timedelta(days=30)  # as migration 0001 made it
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())
    assert _interval(tsdb_url) == timedelta(days=365)
    with psycopg.connect(tsdb_url) as conn:
        chunks = conn.execute("select count(*) from show_chunks('market.bars')").fetchone()[0]
    assert chunks <= 15  # 2000-03 .. 2013-03, one a year (not ~160 of 30 days)


def test_one_minute_bars_get_daily_chunks(tsdb_url):
    market = SyntheticMarket(n_symbols=2, n_bars=1200, freq="1min", seed=2)
    ingest(market, tsdb_url, WarehouseSettings())
    assert _interval(tsdb_url) == timedelta(days=1)


def test_a_setting_overrides_the_chunk_interval(tsdb_url, bundled):
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings(tsdb_chunk_days=90))
    assert _interval(tsdb_url) == timedelta(days=90)


def test_compression_policy_follows_the_settings(tsdb_url):
    query = (
        "select config->>'compress_after' from timescaledb_information.jobs "
        "where proc_name = 'policy_compression' and hypertable_name = 'bars'"
    )
    with psycopg.connect(tsdb_url, autocommit=True) as conn:
        segment = conn.execute(
            "select attname, segmentby_column_index, orderby_column_index "
            "from timescaledb_information.compression_settings "
            "where hypertable_name = 'bars' order by attname"
        ).fetchall()
        assert segment == [("symbol", 1, None), ("ts", None, 1)]
        apply_policies(conn, WarehouseSettings(tsdb_compress_after_days=30))
        assert conn.execute(query).fetchall() == [("30 days",)]
        apply_policies(conn, WarehouseSettings(tsdb_compress_after_days=90))
        assert conn.execute(query).fetchall() == [("90 days",)]
        apply_policies(conn, WarehouseSettings(tsdb_compress_after_days=0))
        assert conn.execute(query).fetchall() == []


def test_the_compression_policy_compresses_old_chunks(tsdb_url, bundled):
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())
    with psycopg.connect(tsdb_url, autocommit=True) as conn:
        apply_policies(conn, WarehouseSettings(tsdb_compress_after_days=30))
        job = conn.execute(
            "select job_id from timescaledb_information.jobs "
            "where proc_name = 'policy_compression' and hypertable_name = 'bars'"
        ).fetchone()[0]
        wait_for_job(conn, job)  # the scheduler starts a new policy at once
        chunks = conn.execute("select count(*) from show_chunks('market.bars')").fetchone()[0]
        assert conn.execute(COMPRESSED).fetchone()[0] == chunks  # every chunk is years old


def wait_for_job(conn: psycopg.Connection, job: int, seconds: float = 120) -> None:
    """Until TimescaleDB's scheduler has run ``job`` successfully (a run that could not get a
    background worker is retried by the scheduler; fails after ``seconds``)."""
    for _ in range(int(seconds / 0.2)):
        if _succeeded(conn, job):
            return
        time.sleep(0.2)
    status = conn.execute(STATS, (job,)).fetchone()
    raise AssertionError(f"the scheduler did not run job {job} within {seconds} s: {status}")


def _bar(frame: pd.DataFrame, symbol: str, day: str) -> pd.DataFrame:
    return frame[(frame.symbol == symbol) & (frame.ts == day)]


def test_reads_and_late_bars_on_compressed_chunks(tsdb_url, bundled):
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())
    year = {"symbols": ["IBM"], "start": pd.Timestamp("2005-01-01", tz="UTC")}
    year["end"] = pd.Timestamp("2006-01-01", tz="UTC")
    before_all, before_year = read_bars(tsdb_url), read_bars(tsdb_url, **year)
    assert compress_old_chunks(tsdb_url) >= 13
    assert read_bars(tsdb_url).equals(before_all)
    assert read_bars(tsdb_url, **year).equals(before_year)

    # a corrected bar and a late one (the exchange was shut after 9/11) into compressed chunks
    corrected = _bar(bundled.frame, "IBM", "2005-06-01").assign(volume=lambda f: f.volume + 1000)
    late = _bar(bundled.frame, "IBM", "2001-09-17").assign(ts="2001-09-12")
    fix = RawBars(pd.concat([corrected, late], ignore_index=True), "fix", "test")
    report = ingest(FrameProvider(fix), tsdb_url, WarehouseSettings())
    assert (report.inserted, report.updated) == (1, 1)
    again = ingest(FrameProvider(fix), tsdb_url, WarehouseSettings())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)

    after = read_bars(tsdb_url, symbols=["IBM"]).to_pandas().set_index("ts")
    old = before_all.to_pandas().query("symbol == 'IBM'").set_index("ts")
    june = pd.Timestamp("2005-06-01 04:00", tz="UTC")
    assert after.loc[june, "volume"] == old.loc[june, "volume"] + 1000
    assert pd.Timestamp("2001-09-12 04:00", tz="UTC") in after.index
    assert len(after) == len(old) + 1


def test_rollups_stay_whole_while_their_policies_refresh(tsdb_url, bundled):
    """A refresh policy run must not expose half-materialized rollups: TimescaleDB's default
    (one bucket per batch, newest first) moves the watermark to the newest bar at once and
    materializes the older buckets over a minute, while reads miss them."""
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())  # makes the aggregates
    with psycopg.connect(tsdb_url, autocommit=True) as conn:
        want = conn.execute(f"select count(*) from ({WEEKLY}) w").fetchone()[0]
        jobs = conn.execute(
            "select job_id from timescaledb_information.jobs "
            "where proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchall()
        assert len(jobs) == 2
        seen = set()
        for _ in range(2400):  # the scheduler runs them now; 120 s at most
            seen.add(conn.execute("select count(*) from market.bars_weekly").fetchone()[0])
            if all(_succeeded(conn, job) for (job,) in jobs):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the refresh policies did not run: {jobs}")
        seen.add(conn.execute("select count(*) from market.bars_weekly").fetchone()[0])
    assert seen == {want}


WEEKLY = """
select symbol, date_trunc('week', (b.ts at time zone i.exchange_tz)::date)
from market.bars b join market.instruments i using (symbol) group by 1, 2
"""


STATS = (
    "select total_successes, total_failures, last_run_status "
    "from timescaledb_information.job_stats where job_id = %s"
)


def _succeeded(conn: psycopg.Connection, job: int) -> bool:
    row = conn.execute(STATS, (job,)).fetchone()
    return bool(row and row[0])
