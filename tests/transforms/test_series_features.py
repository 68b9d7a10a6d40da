"""Series features as of release time: dbt (features.series_features) against the online twin,
a release moved later reaching no bar before it, and series.train joining them into the
training set - through real dbt runs on the bundled bars and statsmodels' macro sample."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from tests.support.bars import read_table
from tests.support.db import copy_database, database_name, drop_database
from transforms.dbt_runner import build
from transforms.online import OnlineFeatureEngine
from transforms.online.series import SeriesTwin, series_value
from transforms.spec import SeriesFeature, default_spec
from transforms.store import series_stale
from warehouse.providers.series_files import macro_sample
from warehouse.series import load_series, read_series

SPEC = default_spec()
COLUMNS = SPEC.series.columns()
SERIES_MODELS = "series_releases series_features"
MOVED = ("unemp", "2008-10-01")  # 2008Q4's unemployment rate, released 2009-01-07
DELAY = pd.Timedelta(days=10)


def sql_features(url: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select * from features.series_features order by ts")
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.astype(dict.fromkeys(COLUMNS, float))


def online_features(url: str, times: pd.Series) -> pd.DataFrame:
    twin = SeriesTwin(SPEC.series.features, read_series(url, list(SPEC.series.depths())))
    return twin.replay(list(times))


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal up to float summation order (avg/stddev in Postgres, numpy here)."""
    assert list(a["ts"]) == list(b["ts"])
    for col in COLUMNS:
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        assert (np.isnan(x) == np.isnan(y)).all(), col
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=col)


@pytest.fixture(scope="module")
def with_series(market):
    """The bundled bars and the macro sample, series features built (not bar_features)."""
    load_series(market, macro_sample())
    assert build(market, full_refresh=True, select=SERIES_MODELS).success
    return market


@pytest.mark.storage
def test_builds_on_index_only_plans(pg_server, market_template):
    """Hash aggregates and sequential scans off, so TimescaleDB plans its SkipScan for the
    distinct bar times: it once failed there ('unsupported subplan type for SkipScan: Result')
    when the model's no-series-yet test sat under the scan, on CI but not here."""
    url = copy_database(pg_server, market_template)
    try:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            for setting in ("enable_hashagg", "enable_seqscan"):
                conn.execute(
                    sql.SQL("alter database {} set {} = off").format(
                        sql.Identifier(database_name(url)), sql.Identifier(setting)
                    )
                )
        assert build(url, full_refresh=True, select=SERIES_MODELS).success
        load_series(url, macro_sample())
        assert build(url, full_refresh=True, select=SERIES_MODELS).success
        assert len(sql_features(url)) > 0
    finally:
        drop_database(pg_server, url)


def test_dbt_and_the_online_twin_agree(with_series):
    sql = sql_features(with_series)
    assert len(sql) == 3270 and sql[COLUMNS].notna().all().all()  # 2000-2013: all defined
    assert_same(sql, online_features(with_series, sql["ts"]))


def moved_release(url: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Release ``MOVED`` ``DELAY`` later; (original, new) release time."""
    series, observed = MOVED
    with psycopg.connect(url) as conn:
        (original,) = conn.execute(
            "update market.series set released_at = released_at + %s"
            " where series_id = %s and observed_at = %s::timestamp at time zone 'America/New_York'"
            " returning released_at - %s",
            (DELAY, series, observed, DELAY),
        ).fetchone()
    return pd.Timestamp(original), pd.Timestamp(original) + DELAY


def test_a_release_moved_later_reaches_no_bar_before_it(with_series):
    before = sql_features(with_series)
    original, new = moved_release(with_series)
    assert build(with_series, select=SERIES_MODELS).success
    after = sql_features(with_series)
    assert_same(after, online_features(with_series, after["ts"]))  # the twin sees the same
    early, between = before["ts"] < original, (before["ts"] >= original) & (before["ts"] < new)
    assert between.sum() >= 5  # the bars that saw the release before it moved
    pd.testing.assert_frame_equal(after[early], before[early])  # nothing earlier moved
    late = ~early & ~between
    pd.testing.assert_frame_equal(after[late], before[late])  # the same history by then
    others = [c for c in COLUMNS if not c.startswith(f"{MOVED[0]}_")]
    pd.testing.assert_frame_equal(after.loc[between, others], before.loc[between, others])
    # between the two times the moved release is unseen: the value before it was released
    unseen = before.loc[early, "unemp_chg_1"].iloc[-1]
    assert (after.loc[between, "unemp_chg_1"] == unseen).all()
    assert (before.loc[between, "unemp_chg_1"] != unseen).all()


def test_train_joins_them_into_the_training_set(built):
    url, _ = built
    spec = dataclasses.replace(SPEC, series=dataclasses.replace(SPEC.series, train=True))
    assert SPEC.columns() == spec.columns()[: -len(COLUMNS)] and spec.columns()[-1] == COLUMNS[-1]
    assert not series_stale(url, spec)  # nothing ingested
    load_series(url, macro_sample())
    assert series_stale(url, spec) and not series_stale(url, SPEC)
    chosen = f"{SERIES_MODELS} bar_features training_set"
    assert build(url, full_refresh=True, select=chosen, spec=spec, tests=False).success
    assert not series_stale(url, spec)
    table = read_table(url, "features.training_set", "symbol in ('IBM', 'MSFT')")
    table["ts"] = pd.to_datetime(table["ts"], utc=True)
    as_of = sql_features(url).set_index("ts").loc[table["ts"], COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(table[COLUMNS].astype(float), as_of)
    # the engine's series columns (its other columns are test_online.py's) over a year of IBM
    engine = OnlineFeatureEngine.from_warehouse(url, ["IBM"], spec, warm_up=False)
    year = "symbol = 'IBM' and ts between '2008-06-01' and '2009-06-01'"
    online = engine.replay(read_table(url, "market.bars", year))
    expected = sql_features(url).set_index("ts").loc[online["ts"], COLUMNS]
    np.testing.assert_allclose(online[COLUMNS].to_numpy(float), expected.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("kind", "length", "expected"),
    [
        ("value", 0, 4.0),
        ("change", 2, 4.0 - 1.0),
        ("surprise", 2, 4.0 - (2.0 + 1.0) / 2),
        ("zscore", 3, (4.0 - 7 / 3) / np.std([4.0, 2.0, 1.0], ddof=1)),
        ("zscore", 5, np.nan),  # fewer observations than the window
    ],
)
def test_series_kinds_by_hand(kind, length, expected):
    feature = SeriesFeature("x", "s", kind, length)
    np.testing.assert_equal(series_value(feature, np.array([4.0, 2.0, 1.0])), expected)
