"""XNYS sessions for the schedules and checks, from ``exchange_calendars``: which session a
daily-pull tick belongs to (holidays and early closes included), and whether bars are stale
while the market is open. Plain Python: the Dagster definitions call it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"
NEW_YORK = ZoneInfo("America/New_York")
PULL_DELAY = timedelta(minutes=30)  # after the close: the vendor's daily bar is final by then
# the pull's cron ticks (New York): 30 minutes after an early (13:00) and a regular (16:00)
# close; a session runs at the first tick at least PULL_DELAY after its own close
PULL_TICKS = ((13, 30), (16, 30))


def calendar() -> xcals.ExchangeCalendar:
    """The XNYS calendar (``exchange_calendars`` caches it)."""
    return xcals.get_calendar(EXCHANGE)


def session_close(day: date) -> datetime | None:
    """When the session of ``day`` closed (UTC), or None when there was none."""
    xnys = calendar()
    if not xnys.is_session(day):
        return None
    return xnys.session_close(day).to_pydatetime()


def pull_session(at: datetime) -> date | None:
    """The session whose daily pull is the tick at ``at``: the first of ``PULL_TICKS`` at
    least ``PULL_DELAY`` after that day's close; None on a day without a session and on the
    other ticks."""
    local = at.astimezone(NEW_YORK)
    close = session_close(local.date())
    if close is None:
        return None
    due = close + PULL_DELAY
    earlier = [datetime.combine(local.date(), time(h, m), NEW_YORK) for h, m in PULL_TICKS]
    if local < due or any(due <= tick < local for tick in earlier):
        return None
    return local.date()


def stale_in_session(newest: datetime | None, now: datetime, limit_minutes: float) -> str | None:
    """Why market.bars is stale at ``now`` (its newest bar ``newest``), or None: outside an
    XNYS session nothing arrives, so nothing is stale."""
    if not calendar().is_open_on_minute(pd.Timestamp(now).floor("min")):
        return None
    if newest is None:
        return "market.bars is empty"
    age = (now - newest).total_seconds() / 60
    if age <= limit_minutes:
        return None
    return f"the newest bar is {age:.1f} minutes old (limit {limit_minutes:g})"
