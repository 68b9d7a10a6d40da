"""The calendar columns per date: the SQL model calendar_days, computed once per date."""

from __future__ import annotations

import datetime as dt
import math
from functools import cache

from transforms.holidays import holiday_dates
from transforms.spec import CALENDAR_COLUMNS


@cache
def _calendar_span() -> tuple[dt.date, dt.date]:
    days = holiday_dates()
    return dt.date(min(days).year, 1, 1), dt.date(max(days).year, 12, 31)


def _is_trading(day: dt.date) -> bool:
    return day.isoweekday() < 6 and day not in holiday_dates()


@cache
def calendar_row(day: dt.date, before: int, after: int) -> tuple[float, ...]:
    """The calendar columns of one date (NaN outside the holiday list's span)."""
    lo, hi = _calendar_span()
    if not lo <= day <= hi:
        return (math.nan,) * len(CALENDAR_COLUMNS)
    first = day.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    month_days = [first + dt.timedelta(days=i) for i in range((nxt - first).days)]
    elapsed = sum(_is_trading(d) for d in month_days if d <= day)
    to_end = sum(_is_trading(d) for d in month_days if d > day)
    dow = day.isoweekday()
    nxt_weekday = day + dt.timedelta(days={5: 3, 6: 2}.get(dow, 1))
    prev_weekday = day - dt.timedelta(days={1: 3, 7: 2}.get(dow, 1))
    holidays = holiday_dates()
    values = {
        "day_of_week": dow,
        "month": day.month,
        "is_month_end": int(to_end == 0),
        "is_quarter_end": int(to_end == 0 and day.month in (3, 6, 9, 12)),
        "days_to_month_end": to_end,
        "is_turn_of_month": int(to_end < before or 1 <= elapsed <= after),
        "is_pre_holiday": int(nxt_weekday in holidays),
        "is_post_holiday": int(prev_weekday in holidays),
    }
    return tuple(float(values[c]) for c in CALENDAR_COLUMNS)
