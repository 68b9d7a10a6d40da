"""The online engine: replaying history reproduces features.bar_features; state, not history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.support.bars import read_table
from transforms.online import OnlineFeatureEngine
from transforms.online.calendar import calendar_row
from transforms.spec import CALENDAR_COLUMNS, default_spec

SPEC = default_spec()


def relative_errors(sql: pd.DataFrame, online: pd.DataFrame) -> dict[str, float]:
    """Per column: max |a - b| / max(|a|, median |a|), after each column's warm-up.

    The floor (the column's median magnitude) keeps near-zero values of differences such as
    %B or relative strength from turning rounding noise into huge relative numbers.
    """
    errors = {}
    for col in SPEC.columns():
        a, b = sql[col].astype(float).to_numpy(), online[col].astype(float).to_numpy()
        assert (np.isnan(a) == np.isnan(b)).all(), f"{col}: defined in one side only"
        ok = ~np.isnan(a)
        if not ok.any():
            errors[col] = 0.0
            continue
        floor = np.median(np.abs(a[ok])) or 1.0
        errors[col] = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), floor)))
    return errors


def test_replay_reproduces_bar_features(built):
    url, _ = built
    from transforms.dbt_runner import build

    assert build(url, full_refresh=True, select="bar_features").success
    with_sector = "update market.instruments set sector = 'tech' where symbol in ('AAPL', 'MSFT')"
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(with_sector)
    assert build(url, full_refresh=True, select="feat_cross_asset bar_features").success
    sql = read_table(url, "features.bar_features")
    engine = OnlineFeatureEngine.from_warehouse(url, warm_up=False)
    online = engine.replay(read_table(url, "market.bars"))
    assert len(online) == len(sql) == 11958
    assert (online["symbol"].to_numpy() == sql["symbol"].to_numpy()).all()
    errors = relative_errors(sql, online)
    assert max(errors.values()) <= 1e-9, {k: v for k, v in errors.items() if v > 1e-9}
    assert sql["sector_rel_ret"].notna().sum() > 6000 and sql["garch_vol"].notna().sum() > 10000


def test_missing_bars_keep_state(bundled):
    """A symbol without a bar at some timestamps advances exactly as if fed alone."""
    frame = bundled.frame[bundled.frame["symbol"].isin(["IBM", "MSFT"])].copy()
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    frame = frame.iloc[::-1].sample(frac=1.0, random_state=1)  # order must not matter
    gaps = (frame["symbol"] == "IBM") & (frame["ts"].dt.dayofweek == 2)  # IBM misses Wednesdays
    together = OnlineFeatureEngine(["IBM", "MSFT"]).replay(frame[~gaps])
    alone = OnlineFeatureEngine(["IBM"]).replay(frame[~gaps & (frame["symbol"] == "IBM")])
    ibm = together[together["symbol"] == "IBM"].reset_index(drop=True)
    own = [c for c in SPEC.columns() if c not in ("corr_mkt_60", "beta_mkt_60", "rel_strength_20")]
    pd.testing.assert_frame_equal(ibm[own], alone[own])


def test_state_does_not_grow_with_history():
    rng = np.random.default_rng(0)
    n = 50
    engine = OnlineFeatureEngine([f"S{i}" for i in range(n)])
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (400, n)), axis=0))

    def state_bytes() -> int:
        seen, total = set(), 0
        stack = [engine.__dict__]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, np.ndarray):
                total += obj.nbytes
            elif isinstance(obj, dict):
                stack += list(obj.values())
            elif isinstance(obj, list | tuple):
                stack += list(obj)
            elif hasattr(obj, "__dict__"):
                stack.append(vars(obj))
            elif hasattr(obj, "__closure__") and obj.__closure__:
                stack += [c.cell_contents for c in obj.__closure__]
        return total

    sizes = []
    for i in range(400):
        ts = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(days=i)
        c = close[i]
        engine.update(ts, c, c * 1.01, c * 0.99, c, np.full(n, 1e6))
        if i in (250, 399):
            sizes.append(state_bytes())
    assert sizes[0] == sizes[1] > 0


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2012-12-31", {"is_month_end": 1, "is_quarter_end": 1, "days_to_month_end": 0}),
        ("2012-11-21", {"is_pre_holiday": 1, "day_of_week": 3}),  # Thanksgiving is 11-22
        ("2012-10-31", {"is_post_holiday": 1}),  # closed 10-29/30 for Hurricane Sandy
        ("2013-02-01", {"is_turn_of_month": 1, "month": 2, "is_month_end": 0}),
        ("2013-02-14", {"is_turn_of_month": 0, "days_to_month_end": 9}),  # Presidents' Day 02-18
    ],
)
def test_calendar(day, expected):
    row = dict(zip(CALENDAR_COLUMNS, calendar_row(pd.Timestamp(day).date(), 1, 3), strict=True))
    assert {k: row[k] for k in expected} == expected
