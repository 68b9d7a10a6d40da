"""Every load into market.bars announces itself on ``qtis_bars`` once its transaction commits."""

from datetime import UTC, datetime

import pandas as pd
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.bars import hand_bars, load_bars
from warehouse.announce import CHANNEL, MAX_PAYLOAD, BarListener, BarsLoaded, payload
from warehouse.loader import load_bars as loader_load_bars

ROWS = [("2024-01-02", 10, 11, 9, 10.5, 100), ("2024-01-03", 10.5, 12, 10, 11, 200)]


def frame_of(symbols: list[str], rows=ROWS) -> pd.DataFrame:
    return pd.concat([hand_bars(rows, s).frame for s in symbols], ignore_index=True)


@pytest.mark.storage  # runs on the embedded server and on TimescaleDB
def test_an_ingest_announces_once_with_its_symbols_and_range(db_url):
    with BarListener(db_url) as listener:
        assert listener.wait(0) == []
        report = load_bars(db_url, hand_bars(ROWS, "AAA"))
        (loaded,) = listener.wait(5)
        assert listener.wait(0.2) == []
    assert loaded.symbols == ("AAA",)
    assert loaded.first == datetime(2024, 1, 2, tzinfo=UTC)
    assert loaded.last == datetime(2024, 1, 3, tzinfo=UTC)
    assert (
        (loaded.rows, loaded.inserted, loaded.updated)
        == (2, 2, 0)
        == (
            report.loaded,
            report.inserted,
            report.updated,
        )
    )
    assert abs(loaded.committed_at - datetime.now(UTC).timestamp()) < 600


FAIL_AT_COMMIT = """
create function pg_temp.refuse() returns trigger language plpgsql as
$$ begin raise exception 'refused at commit'; end $$;
create constraint trigger refuse_bad after insert on market.bars deferrable initially deferred
for each row when (new.symbol = 'BAD') execute function pg_temp.refuse();
"""


def test_load_bars_announces_after_commit_and_a_rollback_announces_nothing(db_url):
    with BarListener(db_url) as listener, psycopg.connect(db_url, autocommit=True) as conn:
        loader_load_bars(conn, frame_of(["AAA", "BBB"]), "test")
        (loaded,) = listener.wait(5)
        assert loaded.symbols == ("AAA", "BBB") and loaded.inserted == 4
        conn.execute(FAIL_AT_COMMIT)  # the load fails at commit, after its NOTIFY was sent
        with pytest.raises(psycopg.errors.RaiseException, match="refused at commit"):
            loader_load_bars(conn, frame_of(["BAD"]), "test")
        assert listener.wait(0.5) == []
        assert conn.execute("select count(*) from market.bars").fetchone()[0] == 4


def test_a_reload_that_changes_nothing_is_not_announced_a_correction_is(db_url):
    load_bars(db_url, hand_bars(ROWS, "AAA"))
    with BarListener(db_url) as listener:
        load_bars(db_url, hand_bars(ROWS, "AAA"))
        assert listener.wait(0.5) == []
        load_bars(db_url, hand_bars([(*ROWS[1][:4], 11.5, 200)], "AAA"))
        (loaded,) = listener.wait(5)
    assert (loaded.rows, loaded.inserted, loaded.updated) == (1, 0, 1)


def test_too_many_symbols_for_a_payload_announce_none(db_url):
    symbols = [f"SYMBOL{i:05d}" for i in range(800)]  # 800 x 14 bytes > 8000
    with BarListener(db_url) as listener, psycopg.connect(db_url) as conn:
        loader_load_bars(conn, frame_of(symbols, ROWS[:1]), "test")
        (loaded,) = listener.wait(5)
    assert loaded.symbols is None and loaded.rows == 800


def test_payload_round_trips_and_stays_under_the_limit():
    first, last = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)
    few = payload(["A", "B"], first, last, 4, 4, 0)
    assert BarsLoaded.parse(few.replace('"committed_at": 0', '"committed_at": 1.5')) == BarsLoaded(
        first, last, ("A", "B"), 4, 4, 0, 1.5
    )
    many = payload([f"S{i}" * 3 for i in range(2000)], first, last, 1, 1, 0)
    assert len(many.encode()) < MAX_PAYLOAD and BarsLoaded.parse(many).symbols is None
    assert CHANNEL == "qtis_bars"


@given(st.lists(st.text(st.characters(blacklist_characters="\x00"), min_size=1), max_size=900))
def test_any_symbol_list_fits_the_payload_or_is_left_out(symbols):
    first = datetime(2024, 1, 2, tzinfo=UTC)
    text = payload(symbols, first, first, len(symbols), len(symbols), 0)
    assert len(text.encode()) < MAX_PAYLOAD - 16
    named = BarsLoaded.parse(text).symbols
    assert named is None or named == tuple(sorted(symbols))
