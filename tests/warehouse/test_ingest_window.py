"""Timestamps outside the accepted window are quarantined, and a stray date creates no partitions.

A row dated 2204 instead of 2024 used to load and make the loader create a monthly partition for
every month in between (~2,000, in the load's transaction); a Parquet timestamp beyond what
pandas can hold (year 1 or 3000) crashed the ingest."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.db import table_rows
from warehouse.ingest import ingest
from warehouse.providers import FileProvider
from warehouse.settings import WarehouseSettings
from warehouse.validation import TimeWindow, validate_bars

HEADER = "symbol,date,open,high,low,close,volume\n"


def bar(day: str, symbol: str = "XYZ") -> str:
    return f"{symbol},{day},10,11,9,10.5,100\n"


def partitions(url: str) -> list[str]:
    """The pieces ``market.bars`` is stored in: monthly partitions, or TimescaleDB's chunks."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'market.bars'::regclass order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def assert_stored_in(url: str, backend: str, months: list[str]) -> None:
    """``market.bars`` is in the partitions of ``months`` (native partitioning), or in chunks
    (TimescaleDB makes one when a row needs it); either way no piece was made without rows."""
    with psycopg.connect(url) as conn:
        empty = conn.execute(
            "select count(*) from pg_inherits i where i.inhparent = 'market.bars'::regclass "
            "and not exists (select 1 from market.bars b where b.tableoid = i.inhrelid)"
        ).fetchone()[0]
    assert empty == 0
    if backend == "embedded":
        assert partitions(url) == [f"bars_{m}" for m in months]
    else:
        assert all(p.startswith("_hyper_") for p in partitions(url)), partitions(url)


def csv_file(tmp_path, *rows: str, name: str = "bars.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows))
    return path


@pytest.mark.storage
def test_a_bar_dated_2204_is_quarantined_and_adds_no_partition(db_url, tmp_path, backend):
    path = csv_file(tmp_path, bar("2020-01-02"), bar("2204-01-02"), bar("2020-01-03"))
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert (report.loaded, report.quarantined) == (2, 1)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert report.quarantine_reasons == {f"ts: after {tomorrow} (QTIS_INGEST_FUTURE_DAYS)": 1}
    assert_stored_in(db_url, backend, ["202001"])
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select raw->>'date', reason from market.bars_quarantine").fetchall()
    assert stored == [
        ("2204-01-02", f"ts: after {tomorrow} (QTIS_INGEST_FUTURE_DAYS) '2204-01-02'")
    ]


@pytest.mark.storage
def test_iso_dates_of_year_1_and_3000_are_outside_the_window_not_unparseable(
    db_url, tmp_path, backend
):
    path = csv_file(tmp_path, bar("0001-01-01"), bar("3000-06-30T10:00:00Z"), bar("2020-01-02"))
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert report.loaded == 1
    kinds = sorted(report.quarantine_reasons)
    assert kinds[0] == "ts: after " + str((datetime.now(UTC) + timedelta(days=1)).date()) + (
        " (QTIS_INGEST_FUTURE_DAYS)"
    )
    assert kinds[1] == "ts: before 1900-01-01 (QTIS_INGEST_EARLIEST)"
    assert_stored_in(db_url, backend, ["202001"])


@pytest.mark.storage
def test_typed_timestamps_beyond_pandas_range_are_quarantined_not_a_crash(db_url, tmp_path):
    stamps = [datetime(3000, 1, 1), datetime(1, 1, 1), datetime(2020, 1, 2)]
    table = pa.table(
        {
            "symbol": ["XYZ"] * 3,
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "open": [10.0] * 3,
            "high": [11.0] * 3,
            "low": [9.0] * 3,
            "close": [10.5] * 3,
            "volume": [100.0] * 3,
        }
    )
    pq.write_table(table, tmp_path / "far.parquet")
    report = ingest(FileProvider(tmp_path / "far.parquet", "parquet"), db_url, WarehouseSettings())
    assert (report.loaded, report.quarantined) == (1, 2)
    with psycopg.connect(db_url) as conn:
        raws = conn.execute("select raw->>'ts' from market.bars_quarantine order by 1").fetchall()
    assert [r[0][:4] for r in raws] == ["0001", "3000"]  # the value as the file held it


@pytest.mark.storage
def test_the_window_is_configured(db_url, tmp_path, backend):
    today = datetime.now(UTC).date()
    rows = [bar("1899-12-29"), bar(str(today + timedelta(days=1))), bar(str(today + timedelta(2)))]
    path = csv_file(tmp_path, *rows)
    default = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert (default.loaded, default.quarantined) == (1, 2)  # tomorrow loads
    wider = WarehouseSettings(ingest_earliest=date(1850, 1, 1), ingest_future_days=2)
    again = ingest(FileProvider(path, "csv"), db_url, wider)
    assert (again.loaded, again.quarantined) == (3, 0)
    months = sorted(
        {f"{d:%Y%m}" for d in (date(1899, 12, 29), *(today + timedelta(n) for n in (1, 2)))}
    )
    assert_stored_in(db_url, backend, months)


def test_validation_takes_an_explicit_window():
    frame = pd.DataFrame(
        {
            "symbol": ["A"] * 3,
            "ts": ["2020-01-01", "2020-01-02", "2020-01-03"],
            **{c: ["1"] * 3 for c in ("open", "high", "low", "close", "volume")},
        }
    )
    window = TimeWindow(date(2020, 1, 2), date(2020, 1, 2))
    result = validate_bars(frame, window=window)
    assert result.good["ts"].dt.strftime("%F").tolist() == ["2020-01-02"]
    assert sorted(result.quarantine["reason"].str.split(" '").str[0]) == [
        "ts: after 2020-01-02 (QTIS_INGEST_FUTURE_DAYS)",
        "ts: before 2020-01-02 (QTIS_INGEST_EARLIEST)",
    ]


def test_partitions_are_created_only_for_months_with_rows(db_url, tmp_path):
    path = csv_file(tmp_path, bar("1901-03-04"), bar("2020-01-02"), bar("2020-01-31"))
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert report.loaded == 3
    assert partitions(db_url) == ["bars_190103", "bars_202001"]
    ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())  # idempotent
    assert partitions(db_url) == ["bars_190103", "bars_202001"]


def _wait_for_lock_waiter(conn: psycopg.Connection, timeout_s: float = 60.0) -> None:
    """Block until another session of this database waits on a lock (bounded)."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while datetime.now(UTC) < deadline:
        waiting = conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
        ).fetchone()[0]
        if waiting:
            return
        threading.Event().wait(0.05)
    raise AssertionError("the ingest never waited on the concurrent partition")


def test_a_partition_created_concurrently_does_not_fail_the_ingest(db_url, tmp_path):
    path = csv_file(tmp_path, bar("2020-01-02"))
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
        except Exception as exc:  # the test reports what the thread raised
            outcome["error"] = exc

    with psycopg.connect(db_url) as other, psycopg.connect(db_url, autocommit=True) as watch:
        other.execute(
            "create table market.bars_202001 partition of market.bars "
            "for values from ('2020-01-01T00:00Z') to ('2020-02-01T00:00Z')"
        )
        worker = threading.Thread(target=run)
        worker.start()
        _wait_for_lock_waiter(watch)
        other.commit()
    worker.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].loaded == 1
    assert len(table_rows(db_url, "market.bars")) == 1


@pytest.mark.parametrize("value", ["2262-04-12", "1677-09-20", "99999-01-01"])
def test_validation_never_raises_on_extreme_dates(value):
    frame = pd.DataFrame(
        {
            "symbol": ["A"],
            "ts": [value],
            **{c: ["1"] for c in ("open", "high", "low", "close", "volume")},
        }
    )
    result = validate_bars(frame)
    assert result.good.empty and len(result.quarantine) == 1


def test_partition_months_do_not_depend_on_the_session_time_zone(db_url, tmp_path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        name = conn.execute("select current_database()").fetchone()[0]
        conn.execute(f"alter database {name} set timezone = 'America/New_York'")
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "XYZ,2020-02-01T00:30:00Z,10,11,9,10.5,100\n")
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert report.loaded == 1
    assert partitions(db_url) == ["bars_202002"]
