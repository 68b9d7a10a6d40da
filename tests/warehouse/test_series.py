"""market.series: release times from lags and vintages, quarantine with reasons, idempotent
loads, on both backends."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest

from warehouse.providers.base import DataSourceError
from warehouse.providers.series_files import MACRO_RELEASE_LAGS, macro_sample, read_fred_csv
from warehouse.series import DUPLICATE, load_series, read_series, validate_series

ALFRED = """observation_date,GDPC1,realtime_start,realtime_end
2009-01-01,100.0,2009-04-29,2009-05-28
2009-01-01,101.0,2009-05-29,9999-12-31
2009-04-01,102.0,2009-07-31 08:30,9999-12-31
2009-07-01,.,2009-10-29,9999-12-31
2009-10-01,104.0,2009-09-01,9999-12-31
2010-01-01,105.0,not a date,9999-12-31
2010-04-01,x1,2010-07-30,9999-12-31
2010-07-01,106.0,2010-10-29,9999-12-31
2010-07-01,106.5,2010-10-29,9999-12-31
"""


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York").tz_convert("UTC")


def test_vintages_keep_their_release_and_bad_rows_their_reason(tmp_path):
    path = tmp_path / "gdp.csv"
    path.write_text(ALFRED)
    checked = validate_series(read_fred_csv(path))
    good = checked.good.set_index("value")
    assert list(good.index) == [100.0, 101.0, 102.0]
    # a date alone is known from the start of the next day; a time of day at that time
    assert good.loc[100.0, "released_at"] == ny("2009-04-30")
    assert good.loc[101.0, "released_at"] == ny("2009-05-30")
    assert good.loc[102.0, "released_at"] == ny("2009-07-31 08:30")
    assert (good["observed_at"] == [ny("2009-01-01")] * 2 + [ny("2009-04-01")]).all()
    assert checked.missing == 1  # FRED's "." is no value, not an error
    reasons = sorted(checked.quarantine["reason"])
    assert reasons == [
        DUPLICATE,
        DUPLICATE,
        "release date is not a date 'not a date'",
        "released before the period it reports on",
        "value is not a finite number 'x1'",
    ]


def test_a_lag_dates_releases_after_the_end_of_each_period(tmp_path):
    path = tmp_path / "cpi.csv"
    path.write_text("DATE,CPIAUCSL\n2009-01-01,1\n2009-02-01,2\n2009-03-01,.\n2009-04-01,4\n")
    good = validate_series(read_fred_csv(path, release_lag=14)).good
    # monthly (inferred, the "." row included): January ends 01-31, + 14 days -> 02-14, known
    # from the start of 02-15
    assert list(good["released_at"]) == [ny("2009-02-15"), ny("2009-03-15"), ny("2009-05-15")]
    with pytest.raises(DataSourceError, match="--release-lag"):
        read_fred_csv(path)
    path.write_text("DATE,CPIAUCSL\n2009-01-01,1\n2009-01-09,2\n")
    with pytest.raises(DataSourceError, match="--period"):
        validate_series(read_fred_csv(path, release_lag=3))
    assert validate_series(read_fred_csv(path, release_lag=3, period="W-FRI")).good.shape[0] == 2


def test_macro_sample_release_lags():
    good = validate_series(macro_sample()).good
    assert set(good["series_id"]) == set(MACRO_RELEASE_LAGS) and len(good) == 203 * 12
    gdp = good[good["series_id"] == "realgdp"].iloc[0]
    # 1959Q1 ends 03-31; the advance estimate about 30 days on (04-30), usable from 05-01
    assert (gdp["observed_at"], gdp["released_at"]) == (ny("1959-01-01"), ny("1959-05-01"))


@pytest.mark.storage
def test_load_is_idempotent_and_keeps_revisions(db_url, tmp_path):
    path = tmp_path / "gdp.csv"
    path.write_text(ALFRED)
    first = load_series(db_url, read_fred_csv(path))
    assert (first.inserted, first.updated, first.quarantined) == (3, 0, 5)
    again = load_series(db_url, read_fred_csv(path))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    path.write_text(ALFRED.replace("101.0", "101.5"))  # a corrected vintage
    fixed = load_series(db_url, read_fred_csv(path, name="gdp"))
    assert (fixed.series, fixed.inserted) == (["gdp"], 3)
    fixed = load_series(db_url, read_fred_csv(path))
    assert (fixed.inserted, fixed.updated) == (0, 1)
    stored = read_series(db_url, ["GDPC1"])
    assert list(stored["value"]) == [100.0, 101.5, 102.0]  # both vintages of 2009Q1
    with psycopg.connect(db_url) as conn:
        quarantined = conn.execute("select count(*) from market.series_quarantine").fetchone()[0]
    assert quarantined == 10  # a bad row is kept once per source however often re-ingested:
    # 5 of GDPC1 over three runs, 5 of gdp
