"""The live feed against a real Postgres: bars loaded by another thread (through the real
ingest, which announces them) come out as cross-sections, by the feed's rules."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from tests.support.bars import hand_bars, load_bars
from trading_runtime import events as ev
from trading_runtime.broker import CrossSection
from trading_runtime.calendar import TradingCalendar
from trading_runtime.instruments import load_instruments
from trading_runtime.live_feed import LiveFeed
from trading_runtime.settings import LiveSettings
from warehouse.providers.base import RawBars

SYMBOLS = ("AAA", "BBB")


def bar(day: str, close: float) -> tuple:
    return (day, close - 0.5, close + 1, close - 1, close, 1000)


def day_bars(days: dict[str, float], symbols=SYMBOLS) -> RawBars:
    """One bar a day of each symbol; BBB's close is AAA's plus 100."""
    frames = [
        hand_bars([bar(d, c + 100 * i) for d, c in days.items()], s).frame
        for i, s in enumerate(symbols)
    ]
    raw = hand_bars([bar("2024-01-02", 1)], symbols[0])
    raw.instruments = [hand_bars([bar("2024-01-02", 1)], s).instruments[0] for s in symbols]
    raw.frame = pd.concat(frames, ignore_index=True)
    return raw


class Session:
    """A feed replayed on this thread; ``then[step]`` loads run on another thread when that
    step comes out, ``until`` stops the replay after that step."""

    def __init__(self, feed: LiveFeed, stop: threading.Event, notices: list[ev.Event]) -> None:
        self.feed, self.stop, self.notices = feed, stop, notices
        self.seen: list[CrossSection] = []

    def run(
        self,
        then: dict[int, Callable[[], None]],
        until: int,
        first: Callable[[], None] | None = None,
    ) -> list[CrossSection]:
        workers = [threading.Thread(target=first)] if first else []
        for worker in workers:
            worker.start()
        for section in self.feed.replay():
            self.seen.append(section)
            if section.step in then:
                workers.append(threading.Thread(target=then[section.step]))
                workers[-1].start()
            if section.step >= until:
                self.stop.set()
        for worker in workers:
            worker.join()
        return self.seen

    def late(self) -> list[ev.BarLate]:
        return [n for n in self.notices if isinstance(n, ev.BarLate)]


@contextmanager
def live(url: str, heard: threading.Event | None = None, **settings) -> Iterator[Session]:
    """A live feed on ``url`` (``heard`` is set at each notice)."""
    stop, notices = threading.Event(), []

    def notice(event: ev.Event) -> None:
        notices.append(event)
        if heard is not None:
            heard.set()

    guard = threading.Timer(60, stop.set)  # a broken feed fails the test instead of hanging it
    guard.start()
    config = LiveSettings(**({"grace_seconds": 60.0, "stale_seconds": 600.0} | settings))
    with LiveFeed(url, load_instruments(url), config, stop, notice) as feed:
        yield Session(feed, stop, notices)
    guard.cancel()


def closes(sections: list[CrossSection]) -> list[list[float]]:
    return [s.close.tolist() for s in sections]


def test_bars_loaded_elsewhere_arrive_as_complete_cross_sections(db_url):
    load_bars(db_url, day_bars({"2024-01-02": 10, "2024-01-03": 11}))
    only_aaa = day_bars({"2024-01-05": 13}, SYMBOLS[:1])
    only_bbb = day_bars({"2024-01-05": 13}, SYMBOLS[1:])
    only_bbb.frame["close"] += 100
    only_bbb.frame["high"] += 100
    only_bbb.frame["low"] += 100
    only_bbb.frame["open"] += 100

    def one_then_other() -> None:
        load_bars(db_url, only_aaa)
        load_bars(db_url, only_bbb)

    with live(db_url) as session:
        seen = session.run(
            {1: lambda: load_bars(db_url, day_bars({"2024-01-04": 12})), 2: one_then_other},
            until=3,
        )
        feed = session.feed
        assert [s.step for s in seen] == [0, 1, 2, 3] and len(feed) == 4
        assert closes(seen) == [[10, 110], [11, 111], [12, 112], [13, 113]]
        assert [s.tradable for s in seen] == [False, False, True, True]  # history is not traded
        assert feed.times[-1] == pd.Timestamp("2024-01-05", tz="UTC")
        assert feed.arrays["close"].shape == (4, 2) and feed.at(3).tradable
        assert session.notices == []
    with live(db_url) as again:  # a restarted feed: the same steps for the same bars
        assert list(again.feed.times) == list(feed.times)
        np.testing.assert_array_equal(again.feed.arrays["close"], feed.arrays["close"])


def test_a_partial_cross_section_goes_after_grace_the_missing_bar_is_late_then_corrected(db_url):
    load_bars(db_url, day_bars({"2024-01-02": 10}))

    def aaa_only() -> None:
        load_bars(db_url, day_bars({"2024-01-03": 11}, SYMBOLS[:1]))

    def bbb_late_then_corrected() -> None:
        load_bars(db_url, day_bars({"2024-01-03": 11}, SYMBOLS[1:]))
        load_bars(db_url, day_bars({"2024-01-03": 11.5}, SYMBOLS[:1]))
        load_bars(db_url, day_bars({"2024-01-04": 12}))

    with live(db_url, grace_seconds=0.3) as session:
        seen = session.run({0: aaa_only, 1: bbb_late_then_corrected}, until=2)
    assert closes(seen)[1][0] == 11 and np.isnan(closes(seen)[1][1])  # BBB: NaN, as replayed
    assert seen[1].tradable and seen[2].tradable
    late = session.late()
    assert [(n.symbol, n.kind, n.step) for n in late] == [
        ("BBB", "late", 1),
        ("AAA", "corrected", 1),
    ]
    assert late[1].ts == "2024-01-03T00:00:00+00:00" and "11.5" in late[1].detail
    assert session.feed.arrays["close"][1, 0] == 11  # what was handed over is not rewritten


def test_out_of_session_bars_are_reported_and_never_tradable(db_url):
    load_bars(db_url, day_bars({"2024-11-29 17:58": 10}))

    def into_the_early_close() -> None:
        load_bars(db_url, day_bars({"2024-11-29 17:59": 11}))
        load_bars(db_url, day_bars({"2024-11-29 18:00": 12}))  # XNYS closed at 13:00 ET

    with live(db_url, frequency="1min") as session:
        seen = session.run({0: into_the_early_close}, until=2)
    assert [s.tradable for s in seen] == [False, True, False]
    assert [(n.symbol, n.kind, n.step) for n in session.late()] == [
        ("AAA", "out_of_session", 2),
        ("BBB", "out_of_session", 2),
    ]


def test_a_feed_that_stops_goes_stale_and_trades_nothing_while_it_catches_up(db_url):
    load_bars(db_url, day_bars({"2024-01-02": 10}))
    stale = threading.Event()

    def backfill_once_stale() -> None:
        stale.wait(30)
        load_bars(db_url, day_bars({"2024-01-04": 12, "2024-01-05": 13, "2024-01-08": 14}))

    with live(db_url, stale, stale_seconds=3.0) as session:  # > an ingest on a busy machine
        seen = session.run(
            {
                0: lambda: load_bars(db_url, day_bars({"2024-01-03": 11})),
                1: backfill_once_stale,
                4: lambda: load_bars(db_url, day_bars({"2024-01-09": 15})),
            },
            until=5,
        )
    assert [s.tradable for s in seen] == [False, True, False, False, False, True]
    status = [(n.state, n.last_bar) for n in session.notices if isinstance(n, ev.FeedStatus)]
    assert status[0] == ("stale", "2024-01-03T00:00:00+00:00")
    assert status[1] == ("fresh", "2024-01-08T00:00:00+00:00")


def test_the_stop_event_ends_a_replay_that_waits_for_bars(db_url):
    load_bars(db_url, day_bars({"2024-01-02": 10}))
    with live(db_url) as session:
        threading.Timer(0.3, session.stop.set).start()
        assert [s.step for s in session.feed.replay()] == [0]  # returned: nothing came


def test_a_feed_starts_on_a_warehouse_without_bars(db_url):
    with psycopg.connect(db_url) as conn:
        conn.execute("insert into market.instruments (symbol) values ('AAA'), ('BBB')")
    with live(db_url) as session:
        assert len(session.feed) == 0 and session.feed.first_trading_step == 0
        seen = session.run(
            {}, until=0, first=lambda: load_bars(db_url, day_bars({"2024-01-02": 10}))
        )
    assert closes(seen) == [[10, 110]] and seen[0].tradable


def test_a_daily_feed_is_not_stale_before_its_next_bar_is_due(db_url):
    calendar = TradingCalendar.of("XNYS")
    today = datetime.now(UTC).date()
    last = max(d.date() for d in pd.date_range(today - timedelta(days=10), today))
    while not calendar.in_session(
        datetime(last.year, last.month, last.day, tzinfo=UTC), "1d", "UTC"
    ):
        last -= timedelta(days=1)
    load_bars(db_url, day_bars({last.isoformat(): 10}))  # the next session closes in the future
    with live(db_url, stale_seconds=0.2) as session:
        threading.Timer(1.0, session.stop.set).start()  # five stale periods of the wall clock
        assert [s.step for s in session.feed.replay()] == [0]
    assert session.notices == []


KILL_OTHERS = """
select pg_terminate_backend(pid) from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
"""


def test_a_dropped_connection_is_reopened_and_what_was_missed_is_read(db_url):
    load_bars(db_url, day_bars({"2024-01-02": 10}))

    def drop_then_load() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert conn.execute(KILL_OTHERS).fetchall()  # the feed's two connections
        load_bars(db_url, day_bars({"2024-01-03": 11}))
        load_bars(db_url, day_bars({"2024-01-04": 12}))

    with live(db_url) as session:
        seen = session.run({0: drop_then_load}, until=2)
    assert closes(seen) == [[10, 110], [11, 111], [12, 112]]
