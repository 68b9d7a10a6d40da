"""Sessions, holidays and early closes from exchange_calendars, for daily and 1-minute bars."""

from datetime import UTC, date, datetime

import psycopg
import pytest

from core.errors import QtisError
from tests.support.bars import hand_bars, load_bars
from trading_runtime.calendar import TradingCalendar
from trading_runtime.instruments import Instrument, load_instruments


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


NYSE = TradingCalendar.of("XNYS")
NY_MIDNIGHT = 5  # daily bars of a New York instrument are stamped at local midnight (EST)


def test_daily_bars_map_to_their_session_by_date():
    assert NYSE.in_session(utc(2024, 11, 29, NY_MIDNIGHT), "1d", "America/New_York")
    assert not NYSE.in_session(utc(2024, 11, 28, NY_MIDNIGHT), "1d", "America/New_York")  # holiday
    assert not NYSE.in_session(utc(2024, 11, 30, NY_MIDNIGHT), "1d", "America/New_York")  # Sat
    assert NYSE.in_session(utc(2024, 11, 29), "1d", "UTC")  # stamped at UTC midnight
    assert not NYSE.in_session(utc(2024, 7, 4), "1d", "UTC")


def test_a_daily_bar_closes_at_its_session_close_early_closes_included():
    assert NYSE.bar_close(utc(2024, 11, 29, NY_MIDNIGHT), "1d", "America/New_York") == utc(
        2024, 11, 29, 18
    )  # the day after Thanksgiving closes at 13:00 ET
    assert NYSE.bar_close(utc(2024, 12, 2, NY_MIDNIGHT), "1d", "America/New_York") == utc(
        2024, 12, 2, 21
    )


def test_minute_bars_inside_the_session_only():
    assert NYSE.in_session(utc(2024, 11, 29, 14, 30), "1min")  # the open
    assert NYSE.in_session(utc(2024, 11, 29, 17, 59), "1min")  # the last minute before 13:00
    assert not NYSE.in_session(utc(2024, 11, 29, 18, 0), "1min")  # after the early close
    assert not NYSE.in_session(utc(2024, 11, 29, 14, 29), "1min")  # pre-market
    assert not NYSE.in_session(utc(2024, 11, 28, 15, 0), "1min")  # Thanksgiving
    assert NYSE.in_session(utc(2024, 12, 2, 20, 59), "1min")
    assert NYSE.bar_close(utc(2024, 11, 29, 17, 59), "1min") == utc(2024, 11, 29, 18)


def test_day_orders_expire_at_the_session_close():
    assert NYSE.session_close(utc(2024, 11, 29, 15)) == utc(2024, 11, 29, 18)  # early close
    assert NYSE.session_close(utc(2024, 11, 29, 19)) == utc(2024, 12, 2, 21)  # after: next one
    assert NYSE.session_close(utc(2024, 11, 28, 15)) == utc(2024, 11, 29, 18)  # holiday
    assert NYSE.next_close(utc(2024, 11, 29, 18)) == utc(2024, 12, 2, 21)


def test_the_next_bar_is_due_at_the_next_session_close_or_trading_minute():
    nyc = "America/New_York"
    assert NYSE.next_bar_close(utc(2024, 11, 27, NY_MIDNIGHT), "1d", nyc) == utc(2024, 11, 29, 18)
    assert NYSE.next_bar_close(utc(2024, 11, 28, NY_MIDNIGHT), "1d", nyc) == utc(2024, 11, 29, 18)
    assert NYSE.next_bar_close(utc(2024, 11, 29, 17, 59), "1min") == utc(2024, 12, 2, 14, 31)
    assert NYSE.next_bar_close(utc(2024, 11, 29, 17, 0), "1min") == utc(2024, 11, 29, 17, 2)


def test_calendars_are_cached_and_an_unknown_exchange_is_a_clear_error():
    assert TradingCalendar.of("XNYS") is NYSE
    assert TradingCalendar.of("XLON").in_session(utc(2024, 11, 28, 10), "1min")  # not a UK holiday
    with pytest.raises(QtisError, match=r"unknown exchange 'NOPE'.*XNYS"):
        TradingCalendar.of("NOPE")
    with pytest.raises(ValueError, match="frequency"):
        NYSE.in_session(utc(2024, 11, 29, 15), "5min")


def test_instruments_have_an_exchange_xnys_by_default(db_url):
    load_bars(db_url, hand_bars([("2024-01-02", 10, 11, 9, 10.5, 100)], "AAA"))
    assert load_instruments(db_url)["AAA"].exchange == "XNYS"
    raw = hand_bars([("2024-01-02", 10, 11, 9, 10.5, 100)], "LSE")
    raw.instruments = [Instrument("LSE", exchange="XLON", exchange_tz="Europe/London")]
    load_bars(db_url, raw)
    assert load_instruments(db_url, ["LSE"])["LSE"].exchange == "XLON"
    with psycopg.connect(db_url) as conn:
        default = conn.execute(
            "select column_default from information_schema.columns"
            " where table_name = 'instruments' and column_name = 'exchange'"
        ).fetchone()
    assert default == ("'XNYS'::text",)


def test_a_daily_bar_stamped_at_midnight_utc_is_for_its_utc_date():
    """Files and vendors that give a date only are loaded at midnight UTC: 2024-11-25 00:00
    UTC is the Monday's bar, though it is Sunday evening in New York."""
    xnys = TradingCalendar.of("XNYS")
    monday_utc = datetime(2024, 11, 25, tzinfo=UTC)
    assert xnys.session_of(monday_utc, "America/New_York") == date(2024, 11, 25)
    assert xnys.in_session(monday_utc, "1d", "America/New_York")
    monday_ny = datetime(2024, 11, 25, 5, tzinfo=UTC)  # midnight in New York
    assert xnys.session_of(monday_ny, "America/New_York") == date(2024, 11, 25)
    saturday_utc = datetime(2024, 11, 23, tzinfo=UTC)
    assert not xnys.in_session(saturday_utc, "1d", "America/New_York")
