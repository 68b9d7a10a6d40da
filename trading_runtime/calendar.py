"""Trading sessions per exchange (a MIC such as XNYS), from the maintained ``exchange_calendars``
tables: holidays, early closes and lunch breaks are theirs, not ours.

Bars are "1d" or "1min". A daily bar is stamped as the warehouse stamps it (its date at
midnight in the instrument's ``exchange_tz``), so it maps to its session by that date. A minute
bar is stamped at its start and covers the minute after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from core.errors import InputError

FREQUENCIES = ("1d", "1min")
MINUTE = timedelta(minutes=1)
MIDNIGHT = time(0)
FIRST_SESSION = "1990-01-01"  # the bundled sample and any daily history fit after it


class TradingCalendar:
    """One exchange's sessions. Build it with :meth:`of` (one per exchange, cached)."""

    def __init__(self, exchange: str, calendar: xcals.ExchangeCalendar) -> None:
        self.exchange = exchange
        self._cal = calendar

    @staticmethod
    @cache
    def of(exchange: str) -> TradingCalendar:
        try:
            calendar = xcals.get_calendar(exchange, start=FIRST_SESSION)
        except xcals.errors.InvalidCalendarName as exc:
            raise InputError(
                f"unknown exchange {exchange!r} (market.instruments.exchange): use a MIC that"
                " exchange_calendars knows, e.g. XNYS, XNAS, XLON"
            ) from exc
        return TradingCalendar(exchange, calendar)

    def session_of(self, ts: datetime, stamp_tz: str | None = None) -> date:
        """The date a daily bar stamped ``ts`` in ``stamp_tz`` (default: the exchange's) is for.
        A bar stamped at midnight UTC rather than local midnight (vendors and files that give
        a date only, loaded as UTC) is for its UTC date."""
        local = ts.astimezone(ZoneInfo(stamp_tz) if stamp_tz else self._cal.tz)
        utc = ts.astimezone(UTC)
        if local.time() != MIDNIGHT and utc.time() == MIDNIGHT:
            return utc.date()
        return local.date()

    def in_session(self, ts: datetime, frequency: str, stamp_tz: str | None = None) -> bool:
        """Whether the bar stamped ``ts`` falls in a trading session (outside the calendar's
        range: no)."""
        _check(frequency)
        try:
            if frequency == "1d":
                return bool(self._cal.is_session(self.session_of(ts, stamp_tz)))
            return bool(self._cal.is_open_on_minute(pd.Timestamp(ts), ignore_breaks=False))
        except xcals.errors.DateOutOfBounds:
            return False

    def bar_close(self, ts: datetime, frequency: str, stamp_tz: str | None = None) -> datetime:
        """When the bar stamped ``ts`` is complete: its session's close (a daily bar, early
        closes included) or the end of its minute."""
        _check(frequency)
        if frequency == "1min":
            return ts + MINUTE
        return self._cal.session_close(self.session_of(ts, stamp_tz)).to_pydatetime()

    def next_bar_close(self, ts: datetime, frequency: str, stamp_tz: str | None = None) -> datetime:
        """When the bar after the one stamped ``ts`` is due complete: the next session's close
        (daily) or the end of the next trading minute. A live feed is not stale before it."""
        _check(frequency)
        try:
            if frequency == "1min":
                minute = self._cal.minute_to_trading_minute(pd.Timestamp(ts + MINUTE), "next")
                return minute.to_pydatetime() + MINUTE
            day = self.session_of(ts, stamp_tz)
            after = self._cal.session_close(day) if self._cal.is_session(day) else ts
            return self.next_close(after)
        except xcals.errors.DateOutOfBounds:  # beyond the calendar's years: due at once
            return ts

    def session_close(self, ts: datetime) -> datetime:
        """The close of the session in progress at ``ts``, or of the next one when ``ts`` falls
        between sessions: when a DAY order sent at ``ts`` expires."""
        session = self._cal.minute_to_session(pd.Timestamp(ts), direction="next")
        return self._cal.session_close(session).to_pydatetime()

    def next_close(self, after: datetime) -> datetime:
        """The first session close strictly after ``after``."""
        return self._cal.next_close(pd.Timestamp(after)).to_pydatetime()


def _check(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise ValueError(f"bar frequency {frequency!r}: use one of {', '.join(FREQUENCIES)}")
