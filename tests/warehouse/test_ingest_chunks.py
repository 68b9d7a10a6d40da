"""Files are read in chunks of at most ``QTIS_INGEST_CHUNK_BYTES``, and a chunked load is the same
load: the same bars, the same quarantine (a duplicate in another chunk is still a duplicate), the
same flags. A file without line ends (a gzip bomb of one line) fails instead of filling memory."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.db import copy_database, drop_database, table_rows
from warehouse.ingest import ingest
from warehouse.providers import DataSourceError, FileProvider
from warehouse.providers.chunks import last_record_end, record_blocks
from warehouse.settings import WarehouseSettings

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB

SMALL = WarehouseSettings(ingest_chunk_bytes=1024)
WHOLE = WarehouseSettings(ingest_chunk_bytes=64 * 2**20)


def messy_rows(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Two symbols of daily bars with bad rows spread through the file, duplicates of earlier
    rows far apart, a spike, a hole, and notes with quoted commas and line breaks."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-01", periods=n // 2)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(n // 2, 2)), axis=0))
    frames = []
    for i, symbol in enumerate(("AAA", "BBB")):
        c = close[:, i]
        frames.append(
            pd.DataFrame(
                {
                    "Ticker": symbol,
                    "Date": days.strftime("%Y-%m-%d"),
                    "Open": (c * 0.999).round(4).astype(str),
                    "High": (c * 1.01).round(4).astype(str),
                    "Low": (c * 0.98).round(4).astype(str),
                    "Close": c.round(4).astype(str),
                    "Volume": "1000",
                    "Note": "",
                }
            )
        )
    rows = pd.concat(frames).sort_values(["Date", "Ticker"], kind="stable")
    rows = rows.reset_index(drop=True)
    rows = rows.drop(index=range(100, 130))  # a hole: gaps are flagged
    rows.loc[60, ["High", "Close"]] = ["500", "480"]  # a spike (flagged, loaded)
    for i in range(7, len(rows), 23):  # bad rows of several kinds, all through the file
        kind = (i // 23) % 5
        column, value = [
            ("Open", "ten"),
            ("Volume", "-5"),
            ("Date", "2204-01-02"),
            ("High", "1"),
            ("Date", "not a day"),
        ][kind]
        rows.iloc[i, rows.columns.get_loc(column)] = value
    note = rows.columns.get_loc("Note")
    for i in range(0, len(rows), 3):  # quoted line breaks: some block ends fall inside one
        rows.iloc[i, note] = f'note {i}, "quoted"\nover\nlines'
    # duplicates of rows from other chunks: the first occurrence loads, the later ones do not
    return pd.concat([rows, rows.iloc[[3, 150, 250]], rows.iloc[[4]]], ignore_index=True)


def quarantine(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select symbol, ts, raw, reason, source from market.bars_quarantine "
            "order by reason, raw::text"
        ).fetchall()


def loaded(url: str) -> dict[str, list[tuple]]:
    return {
        "bars": table_rows(url, "market.bars"),
        "flags": [r[:4] for r in table_rows(url, "market.bar_flags")],
        "quarantine": quarantine(url),
    }


def report_fields(report) -> dict:
    return {k: v for k, v in report.to_dict().items() if k != "run_id"}


@pytest.fixture
def second_db(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    yield url
    drop_database(pg_server, url)


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet"])
def test_chunked_and_whole_file_loads_agree(db_url, second_db, tmp_path, kind):
    rows = messy_rows()
    path = tmp_path / f"bars.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pandas(rows), path, row_group_size=50)
    else:
        rows.to_csv(path, index=False)
    chunks = list(FileProvider(path, kind.split(".")[0]).chunks(None, SMALL.ingest_chunk_bytes))
    assert len(chunks) >= 10 and sum(len(c.frame) for c in chunks) == len(rows)

    chunked = ingest(FileProvider(path, kind.split(".")[0]), db_url, SMALL)
    whole = ingest(FileProvider(path, kind.split(".")[0]), second_db, WHOLE)
    assert report_fields(chunked) == report_fields(whole)
    assert chunked.quarantined == 20 and chunked.quarantine_reasons[
        "duplicate (symbol, ts) in this batch"
    ] == (4)
    assert chunked.flags.get("gap") and chunked.flags.get("spike")
    assert loaded(db_url) == loaded(second_db)
    notes = {r[2]["Note"] for r in quarantine(db_url)}
    assert 'note 30, "quoted"\nover\nlines' in notes  # read back whole across chunk ends


def test_chunks_stay_under_the_setting(tmp_path):
    line = "AAA,2020-01-02,10,11,9,10.5,100\n"  # 32 bytes
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("symbol,date,open,high,low,close,volume\n" + line * 5000)
    sizes = [len(c.frame) for c in FileProvider(path, "csv").chunks(None, 4096)]
    assert sum(sizes) == 5000
    assert max(sizes) <= 4096 // len(line)


def test_a_file_without_line_ends_fails_instead_of_filling_memory(db_url, tmp_path):
    """A gzip bomb: ~64 MB of one line in ~64 KB. It is refused after one chunk's worth."""
    path = tmp_path / "bomb.csv.gz"
    block = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        out.write(block.compress(b"symbol,date,open,high,low,close,volume\nAAA,"))
        zeros = b"0" * 2**20
        for _ in range(64):
            out.write(block.compress(zeros))
        out.write(block.flush())
    assert path.stat().st_size < 2**20
    with pytest.raises(DataSourceError, match="QTIS_INGEST_CHUNK_BYTES") as info:
        ingest(FileProvider(path, "csv"), db_url, WarehouseSettings(ingest_chunk_bytes=2**20))
    assert str(path) in str(info.value)
    assert table_rows(db_url, "market.bars") == table_rows(db_url, "market.bars_quarantine") == []


def test_an_unknown_symbol_in_a_chunked_file_loads_nothing(db_url, tmp_path):
    path = tmp_path / "bars.csv"
    messy_rows().to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="not found: NOPE"):
        ingest(FileProvider(path, "csv"), db_url, SMALL, symbols=["AAA", "NOPE"])
    assert table_rows(db_url, "market.bars") == table_rows(db_url, "market.bars_quarantine") == []
    report = ingest(FileProvider(path, "csv"), db_url, SMALL, symbols=["bbb"])
    assert report.symbols == ["BBB"]


def test_a_broken_line_late_in_a_file_loads_nothing(db_url, tmp_path):
    path = tmp_path / "bars.csv"
    messy_rows().to_csv(path, index=False)
    with path.open("a") as out:
        out.write("AAA,2021-01-01,1,2,0.5,1,1,,too,many,fields\n")
    with pytest.raises(DataSourceError, match="not a readable CSV file"):
        ingest(FileProvider(path, "csv"), db_url, SMALL)
    assert table_rows(db_url, "market.bars") == table_rows(db_url, "market.bars_quarantine") == []


@pytest.mark.parametrize(
    ("block", "end"),
    [
        (b"a,b\n1,2\n3,4", 7),
        (b'a,b\n1,"x\ny"\n3,"4\n', 11),  # the last line break is inside an open quote
        (b'1,"say ""hi""\n"\n', 15),  # doubled quotes are a quote inside the field
        (b"no line end", -1),
    ],
)
def test_blocks_end_at_a_line_break_outside_quotes(block, end):
    assert last_record_end(block) == end


def test_blocks_reassemble_the_stream(tmp_path):
    text = b"".join(b'%d,"a\nb",%s\n' % (i, b"x" * (i % 50)) for i in range(2000))
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    with path.open("rb") as stream:
        blocks = list(record_blocks(stream, 1024, "t"))
    assert b"".join(blocks) == text
    assert all(b.endswith(b"\n") and len(b) <= 2 * 1024 for b in blocks)
