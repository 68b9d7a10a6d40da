"""The dbt feature store on the bundled sample: TA-Lib reference, incremental = full refresh,
no look-ahead, and dbt tests that catch bad rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.support.bars import load_bars, read_table
from tests.support.references import talib_reference
from transforms.dbt_runner import build
from transforms.garch import update_garch
from transforms.spec import default_spec

SPEC = default_spec()


@pytest.mark.storage
def test_every_spec_column_is_built(built):
    url, report = built
    features = read_table(url, "features.bar_features", "symbol = 'IBM'")
    assert list(features.columns) == ["symbol", "ts", *SPEC.columns()]
    assert len(features) == 3270
    labels = read_table(url, "features.labels", "symbol = 'IBM'")
    assert list(labels.columns) == ["symbol", "ts", *SPEC.label_columns()]
    training = read_table(url, "features.training_set", "symbol = 'IBM'")
    assert list(training.columns) == ["symbol", "ts", *SPEC.columns(), *SPEC.label_columns()]
    tests = [n for n in report.nodes if n.resource_type == "test"]
    assert len(tests) >= 20 and all(n.status == "pass" for n in tests)


@pytest.mark.storage
@pytest.mark.parametrize("symbol", ["AAPL", "IBM", "MSFT", "GOOG"])
def test_matches_talib(built, symbol):
    url, _ = built
    frame = read_table(url, "features.bar_features", f"symbol = '{symbol}'")
    bars = read_table(url, "market.bars", f"symbol = '{symbol}'")
    errors = {}
    for column, expected in talib_reference(bars).items():
        ours = frame[column].to_numpy(float)
        warmup = SPEC.warmups[column]
        assert np.isnan(ours[:warmup]).all(), f"{column} defined before its warm-up"
        # TA-Lib hides MACD until its signal starts; we define it from the slow EMA's start
        start = max(warmup, int(np.argmax(~np.isnan(expected))))
        assert not np.isnan(ours[start:]).any(), f"{column} has gaps after warm-up"
        rel = np.abs(ours[start:] - expected[start:]) / np.maximum(np.abs(expected[start:]), 1e-9)
        errors[column] = rel.max()
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.storage
def test_incremental_equals_full_refresh(db_url, bundled):
    ts = pd.to_datetime(bundled.frame["ts"])
    cut = pd.Timestamp("2013-02-20")
    load_bars(db_url, bundled, lambda f: pd.to_datetime(f["ts"]) < cut)
    assert build(db_url, full_refresh=True).success
    before = read_table(db_url, "features.bar_features")

    load_bars(db_url, bundled)  # the remaining days arrive
    new_rows = int((ts >= cut).sum())
    report = build(db_url)
    assert report.success
    rows = {n.name: n.rows for n in report.nodes}
    # only the new bars are computed and written (plus labels' incomplete tail)
    assert rows["feat_recursive"] == rows["feat_window"] == rows["bar_features"] == new_rows
    assert rows["labels"] == new_rows + 4 * max(SPEC.horizons)
    incremental = {t: read_table(db_url, f"features.{t}") for t in ("bar_features", "labels")}
    old = incremental["bar_features"].merge(before[["symbol", "ts"]])
    pd.testing.assert_frame_equal(old, before, check_exact=True)  # old rows untouched

    assert build(db_url, full_refresh=True).success
    for table, frame in incremental.items():
        full = read_table(db_url, f"features.{table}")
        pd.testing.assert_frame_equal(frame, full, check_exact=True)


def _perturb_after(raw, cut: pd.Timestamp, seed: int):
    """The same bars, except every bar after ``cut`` is scaled by a random factor."""
    frame = raw.frame.copy()
    later = pd.to_datetime(frame["ts"]) > cut
    factor = np.random.default_rng(seed).uniform(0.5, 1.5, later.sum())
    for col in ("open", "high", "low", "close", "adj_close"):
        frame.loc[later, col] = frame.loc[later, col] * factor
    frame["volume"] = frame["volume"].astype(float)
    frame.loc[later, "volume"] = frame.loc[later, "volume"] * factor[::-1]
    return frame


@pytest.mark.slow
def test_no_look_ahead(built, db_url, bundled):
    """Changing every bar after the cut changes no feature at or before it, and exactly the
    labels whose horizon reaches past it (a label at t uses the bars up to t + h). One cut (each
    costs a load, the GARCH fits and a full build); the online twin's replay test checks every
    bar."""
    from dataclasses import replace

    base_url, _ = built
    cut = "2010-03-15"
    cut_ts = pd.Timestamp(cut)
    edited = replace(bundled, frame=_perturb_after(bundled, cut_ts, seed=len(cut)))
    load_bars(db_url, edited)
    update_garch(db_url)  # the GARCH fits are in the check too
    assert build(db_url, full_refresh=True).success
    where = f"ts <= '{cut} 23:59:59+00'"
    original = read_table(base_url, "features.bar_features", where)
    changed = read_table(db_url, "features.bar_features", where)
    assert len(original) > 1000
    pd.testing.assert_frame_equal(original, changed, check_exact=True)
    after = f"ts > '{cut} 23:59:59+00'"
    a = read_table(base_url, "features.bar_features", after)
    b = read_table(db_url, "features.bar_features", after)
    assert not np.allclose(a["sma_5"], b["sma_5"])  # the edit did reach the features
    _assert_labels_reach(
        read_table(base_url, "features.labels"), read_table(db_url, "features.labels"), cut
    )


def _assert_labels_reach(original: pd.DataFrame, changed: pd.DataFrame, cut: str) -> None:
    """Labels of the bars up to ``cut``: unchanged where bar t + h is too, changed where not."""
    last = pd.Timestamp(f"{cut} 23:59:59", tz="UTC")
    before = original["ts"] <= last
    for h in SPEC.horizons:
        reach = original.groupby("symbol")["ts"].shift(-h)  # bar t + h
        inside, crossing = before & (reach <= last), before & (reach > last)
        assert inside.sum() > 1000 and crossing.sum() >= h
        columns = [f"fwd_ret_{h}", f"fwd_dir_{h}", f"fwd_vol_{h}"]
        pd.testing.assert_frame_equal(
            original.loc[inside, columns], changed.loc[inside, columns], check_exact=True
        )
        for column in (f"fwd_ret_{h}", f"fwd_vol_{h}"):
            assert (original.loc[crossing, column] != changed.loc[crossing, column]).all(), column


@pytest.mark.storage
def test_dbt_tests_catch_bad_rows(built):
    url, _ = built
    with psycopg.connect(url) as conn:
        conn.execute(
            "update features.bar_features set rsi_14 = 150, bb_lower_20 = bb_upper_20 + 1 "
            "where symbol = 'AAPL' and ts = (select max(ts) from features.bar_features)"
        )
    try:
        report = build(url, select="bar_features,resource_type:test")
        failed = {n.name for n in report.failures()}
        assert any(name.startswith("between_bar_features_rsi_14") for name in failed), failed
        assert any(name.startswith("ordered_bar_features_bb_lower") for name in failed), failed
    finally:
        assert build(url, full_refresh=True, select="bar_features").success
