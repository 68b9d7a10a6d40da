"""Ingestion end to end against the real embedded Postgres."""

import pandas as pd
import psycopg
import pytest

from tests.support.bars import good_frame
from tests.support.db import table_rows
from warehouse.ingest import ingest
from warehouse.loader import load_bars
from warehouse.providers import BundledProvider, DataSourceError, FileProvider, SyntheticMarket
from warehouse.providers.base import FrameProvider, RawBars
from warehouse.reads import read_bars
from warehouse.settings import WarehouseSettings

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB


def test_bundled_ingest_twice_leaves_the_table_identical(db_url):
    first = ingest(BundledProvider(), db_url, WarehouseSettings())
    rows = table_rows(db_url, "market.bars")
    second = ingest(BundledProvider(), db_url, WarehouseSettings())
    assert table_rows(db_url, "market.bars") == rows
    assert first.symbols == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert first.inserted == len(rows) == 3270 * 3 + 2148
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(rows))
    with psycopg.connect(db_url) as conn:
        tz = conn.execute(
            "select exchange_tz, sector from market.instruments where symbol='AAPL'"
        ).fetchone()
        assert tz == ("America/New_York", "Information Technology")
        runs = conn.execute("select count(*) from market.ingest_runs").fetchone()[0]
        assert runs == 2


def test_changed_values_are_updated_not_duplicated(db_url, tmp_path):
    frame = SyntheticMarket(n_symbols=3, n_bars=50).generate()
    frame.to_parquet(tmp_path / "bars.parquet")
    ingest(FileProvider(tmp_path / "bars.parquet", "parquet"), db_url, WarehouseSettings())
    frame.loc[frame.index[:5], ["close", "high"]] *= 1.01
    frame.to_parquet(tmp_path / "bars.parquet")
    report = ingest(FileProvider(tmp_path / "bars.parquet", "parquet"), db_url, WarehouseSettings())
    assert (report.inserted, report.updated, report.unchanged) == (0, 5, 145)
    assert len(table_rows(db_url, "market.bars")) == 150


def write_csv(path, text):
    path.write_text(text)
    return path


CSV_WITH_BAD_ROWS = """Ticker,Date,Open,High,Low,Close,Adj Close,Volume
XYZ,2020-01-02,10,11,9,10.5,10.5,100
XYZ,2020-01-03,10,9,9,10.5,10.5,100
XYZ,2020-01-06,ten,11,9,10.5,10.5,100
XYZ,2020-01-07,10,11,9,10.5,10.5,-100
XYZ,not-a-date,10,11,9,10.5,10.5,100
XYZ,2020-01-02,10,11,9,10.5,10.5,100
XYZ,2020-01-08,10,11,9,10.4,10.4,100
"""


def test_bad_rows_are_quarantined_and_good_rows_load(db_url, tmp_path):
    path = write_csv(tmp_path / "xyz.csv", CSV_WITH_BAD_ROWS)
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert (report.loaded, report.quarantined) == (2, 5)
    assert report.quarantine_reasons == {
        "duplicate (symbol, ts) in this batch": 1,
        "high >= max(open, close)": 1,
        "open: not a number": 1,
        "ts: unparseable or nonexistent timestamp": 1,
        "volume: must be >= 0": 1,
    }
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "select symbol, raw->>'Open', reason, source from market.bars_quarantine order by id"
        ).fetchall()
    assert ("XYZ", "ten", "open: not a number 'ten'", "csv") in stored
    # Re-ingesting the same file neither duplicates bars nor quarantine rows.
    ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert len(table_rows(db_url, "market.bars_quarantine")) == 5
    assert len(table_rows(db_url, "market.bars")) == 2


MALFORMED = {
    "missing_column.csv": (
        "Date,Open,High,Low,Volume\n2020-01-02,1,2,0.5,10\n",
        "missing required column(s): close",
    ),
    "empty.csv": ("", "the file is empty"),
    "header_only.csv": ("symbol,date,open,high,low,close,volume\n", "header but no rows"),
    "garbage.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa binary", "not a readable CSV file"),
    "text.parquet": ("symbol,date\nA,2020-01-01\n", "not a readable Parquet file"),
    "readme.csv": ("This is not a table of prices.\nJust words.\n", "missing required column(s)"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_fail_clearly_and_load_nothing(db_url, tmp_path, name):
    content, message = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    ingest(BundledProvider(), db_url, WarehouseSettings(), symbols=["IBM"])
    before = table_rows(db_url, "market.bars"), table_rows(db_url, "market.bars_quarantine")
    kind = "parquet" if name.endswith(".parquet") else "csv"
    with pytest.raises(DataSourceError) as info:
        ingest(FileProvider(path, kind), db_url, WarehouseSettings())
    assert str(path) in str(info.value) and message in str(info.value)
    assert (
        table_rows(db_url, "market.bars"),
        table_rows(db_url, "market.bars_quarantine"),
    ) == before


def test_header_mapping_and_symbol_from_file_name(db_url, tmp_path):
    path = write_csv(
        tmp_path / "acme.csv",
        "When,PX_OPEN,PX_HIGH,PX_LOW,PX_LAST,PX_VOLUME\n2020-01-02,1,2,0.5,1.5,10\n",
    )
    with pytest.raises(DataSourceError, match="--map"):
        ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    mapping = {
        "When": "ts",
        "PX_OPEN": "open",
        "PX_HIGH": "high",
        "PX_LOW": "low",
        "PX_LAST": "close",
        "PX_VOLUME": "volume",
    }
    report = ingest(FileProvider(path, "csv", mapping), db_url, WarehouseSettings())
    assert report.symbols == ["ACME"] and report.loaded == 1


def test_dates_use_the_registered_exchange_time_zone(db_url, tmp_path):
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "insert into market.instruments (symbol, exchange_tz) values ('7203.T', 'Asia/Tokyo')"
        )
    path = write_csv(
        tmp_path / "t.csv",
        "symbol,date,open,high,low,close,volume\n"
        "7203.T,2020-01-06,1,2,0.5,1.5,10\nZZZ,2020-01-06,1,2,0.5,1.5,10\n",
    )
    ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    bars = read_bars(db_url).to_pandas().set_index("symbol")["ts"]
    assert bars["7203.T"] == pd.Timestamp("2020-01-05T15:00Z")  # midnight in Tokyo
    assert bars["ZZZ"] == pd.Timestamp("2020-01-06T00:00Z")  # unknown zone: UTC


def test_unknown_symbol_is_an_error(db_url):
    with pytest.raises(DataSourceError, match="not found: NOPE"):
        ingest(BundledProvider(), db_url, WarehouseSettings(), symbols=["NOPE"])


def test_arrow_read_matches_what_was_loaded(db_url):
    ingest(
        SyntheticMarket(n_symbols=5, n_bars=300, freq="5min", seed=3), db_url, WarehouseSettings()
    )
    table = read_bars(db_url, symbols=["SYN0001", "SYN0003"])
    frame = table.to_pandas()
    expected = SyntheticMarket(n_symbols=5, n_bars=300, freq="5min", seed=3).generate()
    expected = expected[expected.symbol.isin(["SYN0001", "SYN0003"])].sort_values(["symbol", "ts"])
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )
    window = read_bars(db_url, start=expected.ts.iloc[10], end=expected.ts.iloc[20])
    assert set(window.column("symbol").to_pylist()) == {f"SYN000{i}" for i in range(5)}


def test_flags_are_recorded(db_url):
    settings = WarehouseSettings(database_url=db_url)
    report = ingest(BundledProvider(), db_url, settings)
    assert report.flags == {"spike": 6, "gap": 3}
    with psycopg.connect(db_url) as conn:
        gaps = conn.execute(
            "select symbol, ts::date from market.bar_flags where flag='gap' order by 1"
        ).fetchall()
    assert [g[0] for g in gaps] == ["AAPL", "IBM", "MSFT"]  # reopening after 9/11
    assert str(gaps[0][1]) == "2001-09-17"


def test_spikes_and_gaps_are_flagged_not_quarantined(db_url):
    frame = good_frame(60)
    frame.loc[30, ["open", "high", "low", "close"]] = ["129.5", "300", "129", "260"]
    frame = frame.drop(index=range(40, 50))  # a two-week hole
    report = ingest(FrameProvider(RawBars(frame, "t", "t")), db_url, WarehouseSettings())
    assert (report.quarantined, report.loaded) == (0, 50)
    with psycopg.connect(db_url) as conn:
        flags = conn.execute(
            "select flag, ts::date::text, detail from market.bar_flags order by 1, 2"
        ).fetchall()
    # the numbers pandas computed for the same frame before flags moved into the database
    assert flags == [
        ("gap", "2021-03-15", "17 days since the previous bar"),
        ("spike", "2021-02-15", "log return +0.7009 is 527.0 robust sd from the median"),
        ("spike", "2021-02-16", "log return -0.6855 is 527.7 robust sd from the median"),
        ("spike", "2021-03-15", "log return +0.0762 is 51.7 robust sd from the median"),
    ]


def test_mixed_new_and_changed_rows_take_the_upsert_path(db_url):
    bars = SyntheticMarket(n_symbols=2, n_bars=20).generate().sort_values(["symbol", "ts"])
    with psycopg.connect(db_url) as conn:
        assert load_bars(conn, bars.iloc[:30], "s").inserted == 30  # append path
        changed = bars.copy()
        changed.loc[changed.index[:3], "volume"] += 1
        result = load_bars(conn, changed, "s")
    assert (result.inserted, result.updated, result.unchanged) == (10, 3, 27)
    assert len(table_rows(db_url, "market.bars")) == 40


def sent(conn: psycopg.Connection, path, action) -> str:
    """What the client sent the server while ``action`` ran (libpq's protocol trace)."""
    with open(path, "w") as trace:
        conn.pgconn.trace(trace.fileno())
        try:
            action()
        finally:
            conn.pgconn.untrace()
    return path.read_text()


def test_new_keys_are_counted_with_returning_old_on_18_and_before_the_upsert_on_older(
    db_url, tmp_path
):
    bars = SyntheticMarket(n_symbols=1, n_bars=20).generate().sort_values("ts")
    changed = bars.copy()
    changed.loc[changed.index[:2], "close"] += 0.5
    with psycopg.connect(db_url) as conn:
        load_bars(conn, bars.iloc[:15], "s")
        results = []
        trace = sent(
            conn, tmp_path / "trace", lambda: results.append(load_bars(conn, changed, "s"))
        )
        modern = conn.info.server_version >= 180000
    assert (results[0].inserted, results[0].updated) == (5, 2)
    assert ("old.symbol is null" in trace, "where not exists" in trace) == (modern, not modern)


def test_quarantine_keeps_the_row_as_written(db_url, tmp_path):
    path = write_csv(
        tmp_path / "q.csv",
        "Symbol,Date,Open,High,Low,Close,Volume,Note\n"
        "Q,2020-01-02,1,2,0.5,1.5,10,ok\nQ,2020-01-03,1,2,0.5,1.5,lots,typo here\n",
    )
    ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    with psycopg.connect(db_url) as conn:
        raw = conn.execute("select raw from market.bars_quarantine").fetchone()[0]
    assert raw == {
        "Symbol": "Q",
        "Date": "2020-01-03",
        "Open": "1",
        "High": "2",
        "Low": "0.5",
        "Close": "1.5",
        "Volume": "lots",
        "Note": "typo here",
        "_file": str(path),
    }


def test_nul_characters_are_quarantined_not_a_crash(db_url, tmp_path):
    """Postgres text cannot hold NUL; a Parquet string can (pandas' CSV reader cuts it off)."""
    frame = pd.DataFrame(
        {
            "symbol": ["N\x00L", "OK", "OK"],
            "date": ["2020-01-02", "2020-01-02", "2020-01-03"],
            **{c: ["1", "1", "1"] for c in ("open", "high", "low", "close")},
            "volume": ["10", "lots\x00", "10"],
            "note": ["x", "a\x00b", "fine"],
        }
    )
    frame.to_parquet(tmp_path / "nul.parquet")
    report = ingest(FileProvider(tmp_path / "nul.parquet", "parquet"), db_url, WarehouseSettings())
    assert (report.loaded, report.quarantined) == (1, 2)
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "select symbol, reason, raw->>'note' from market.bars_quarantine order by 1"
        ).fetchall()
    assert stored == [
        ("N\ufffdL", "symbol: contains NUL", "x"),
        ("OK", "volume: not a number 'lots\ufffd'", "a\ufffdb"),
    ]


def test_a_close_only_panel_stores_nulls_and_reloads_unchanged(db_url, tmp_path):
    """A wide file: one close per non-empty cell, open/high/low/volume null (binary COPY of
    NULLs, migration 0013), and a re-ingest finds every row unchanged (nulls compare equal)."""
    text = "Date,AAA,BBB\n2020-01-02,10,20\n2020-01-03,10.5,\n2020-01-06,11,21\n"
    path = write_csv(tmp_path / "panel.csv", text)
    report = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert (report.symbols, report.loaded, report.quarantined) == (["AAA", "BBB"], 5, 0)
    rows = table_rows(db_url, "market.bars")
    assert [(r[0], r[5]) for r in rows] == [
        ("AAA", 10.0), ("AAA", 10.5), ("AAA", 11.0), ("BBB", 20.0), ("BBB", 21.0)
    ]  # fmt: skip
    assert all(r[2] is r[3] is r[4] is r[6] is None for r in rows)
    again = ingest(FileProvider(path, "csv"), db_url, WarehouseSettings())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
