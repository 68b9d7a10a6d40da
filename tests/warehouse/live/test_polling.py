"""A provider polled as a live source: the loop is generic over providers, so it is tested with
a CSV file provider over a file the test appends to (Yahoo, polled the same way, cannot be
reached from here). New and changed rows load, unchanged ones are not sent again, a failing
poll backs off and recovers, a bad row is quarantined."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.support.vendors import eventually, quarantined, running, stored
from warehouse.live.backoff import Backoff
from warehouse.live.polling import PollingSource
from warehouse.providers.files import FileProvider

HEADER = "symbol,ts,open,high,low,close,volume\n"


def row(symbol: str, minute: int, close: float = 10.0) -> str:
    return f"{symbol},2024-03-01T14:{minute:02d}:00Z,10,11,9,{close},100\n"


def publish(path: Path, text: str) -> None:
    """Replace the file at once: a poll never reads it half written."""
    part = path.with_suffix(".part")
    part.write_text(text)
    part.replace(path)


def append(path: Path, text: str) -> None:
    publish(path, path.read_text() + text)


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.csv"
    publish(path, HEADER + row("AAA", 30) + row("BBB", 30))
    return path


def source(path: Path) -> PollingSource:
    backoff = Backoff(0.01, 0.2, 0.5, random.Random(3))
    return PollingSource(FileProvider(path, "csv"), None, every=0.02, backoff=backoff)


def test_a_growing_file_is_appended_as_it_grows(feed: Path, db_url: str):
    poller = source(feed)
    with running(poller, db_url) as failures:
        eventually(lambda: len(stored(db_url)) == 2)
        append(feed, row("AAA", 31) + row("BBB", 31))
        eventually(lambda: len(stored(db_url)) == 4)
        # a correction of a stored bar: the changed row is sent, and updates it
        publish(feed, feed.read_text().replace(row("AAA", 31), row("AAA", 31, close=10.5)))
        eventually(lambda: any(r[0] == "AAA" and r[5] == 10.5 for r in stored(db_url)))
    assert not failures
    # 2 + 2 new + 1 changed: rows already seen are not loaded again
    assert poller.stats.polled == 5
    assert poller.stats.updated == 1 and poller.stats.inserted == 4


def test_a_failing_poll_backs_off_and_recovers(feed: Path, db_url: str):
    poller = source(feed)
    hidden = feed.with_suffix(".away")
    feed.rename(hidden)
    with running(poller, db_url) as failures:
        eventually(lambda: len(poller.stats.retry_delays) >= 4)
        assert not poller.stats.connected
        hidden.rename(feed)
        eventually(lambda: len(stored(db_url)) == 2)
        eventually(lambda: poller.stats.connected)  # a poll answered
    assert not failures
    first = poller.stats.retry_delays[:4]
    assert first == sorted(first) and first[3] > first[0]


def test_a_bad_row_is_quarantined_with_its_reason(feed: Path, db_url: str):
    poller = source(feed)
    with running(poller, db_url) as failures:
        eventually(lambda: len(stored(db_url)) == 2)
        append(feed, "AAA,2024-03-01T14:32:00Z,10,8,9,10,100\n")  # high below low
        eventually(lambda: quarantined(db_url))
    assert not failures
    [(symbol, reason, source_name)] = quarantined(db_url)
    assert symbol == "AAA" and "high >= max(open, close)" in reason and source_name == "csv"
