"""Exchange holidays (NYSE rules, plus the unscheduled closures since 2000) for calendar features.

The list is a dbt seed (dbt/seeds/market_holidays.csv) so SQL and the online engine read the same
dates; regenerate it with ``python -m transforms.holidays`` after changing the rules.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)

SEED_PATH = Path(__file__).parent / "dbt" / "seeds" / "market_holidays.csv"
UNSCHEDULED_CLOSURES = {
    "2001-09-11": "September 11",
    "2001-09-12": "September 11",
    "2001-09-13": "September 11",
    "2001-09-14": "September 11",
    "2004-06-11": "Reagan funeral",
    "2007-01-02": "Ford funeral",
    "2012-10-29": "Hurricane Sandy",
    "2012-10-30": "Hurricane Sandy",
    "2018-12-05": "Bush funeral",
    "2025-01-09": "Carter funeral",
}


def nyse_holidays(start: str = "1990-01-01", end: str = "2035-12-31") -> pd.DataFrame:
    class NYSECalendar(AbstractHolidayCalendar):
        rules = [  # noqa: RUF012 - pandas reads a class attribute
            Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
            USMartinLutherKingJr,
            USPresidentsDay,
            GoodFriday,
            USMemorialDay,
            Holiday(
                "Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday
            ),
            Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
            USLaborDay,
            USThanksgivingDay,
            Holiday("Christmas", month=12, day=25, observance=nearest_workday),
        ]

    dates = NYSECalendar().holidays(start, end, return_name=True)
    frame = pd.DataFrame({"day": dates.index.date, "name": dates.to_numpy()})
    extra = pd.DataFrame(
        {
            "day": pd.to_datetime(list(UNSCHEDULED_CLOSURES)).date,
            "name": list(UNSCHEDULED_CLOSURES.values()),
        }
    )
    frame = pd.concat([frame, extra]).drop_duplicates("day").sort_values("day")
    return frame[pd.to_datetime(frame["day"]).dt.dayofweek < 5].reset_index(drop=True)


@cache
def holiday_dates() -> frozenset[dt.date]:
    """The seed's holidays (what the dbt models see)."""
    frame = pd.read_csv(SEED_PATH, parse_dates=["day"])
    return frozenset(frame["day"].dt.date)


if __name__ == "__main__":
    nyse_holidays().to_csv(SEED_PATH, index=False)
    print(f"wrote {SEED_PATH}")
