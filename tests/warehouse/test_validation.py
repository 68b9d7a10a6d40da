"""Validation rules, one bad-row kind at a time, plus a hypothesis property over frames."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bars import good_frame
from warehouse.validation import validate_bars

BAD_ROWS = {
    "high >= max(open, close)": {"high": "99.0"},
    "low <= min(open, close)": {"low": "101.9"},
    "volume: must be >= 0": {"volume": "-1"},
    "close: must be > 0": {"close": "0", "open": "0.5", "low": "0.1"},
    "open: must be finite": {"open": "inf", "high": "inf"},
    "open: not a number": {"open": "abc"},
    "close: missing": {"close": None},
    "ts: unparseable or nonexistent timestamp": {"ts": "2021-13-45"},
    "ts: missing": {"ts": None},
    "symbol: missing": {"symbol": " "},
}


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_each_bad_row_kind_is_quarantined_with_its_reason(reason):
    frame = good_frame()
    for column, value in BAD_ROWS[reason].items():
        frame.loc[2, column] = value
    result = validate_bars(frame)
    assert len(result.good) == 4
    assert len(result.quarantine) == 1
    assert reason in result.quarantine.loc[0, "reason"]
    assert result.quarantine.loc[0, "raw"]["close"] == frame.loc[2, "close"]  # raw text kept


def test_duplicate_symbol_ts_keeps_first_and_quarantines_the_rest():
    frame = pd.concat([good_frame(), good_frame().iloc[[1]]], ignore_index=True)
    result = validate_bars(frame)
    assert len(result.good) == 5
    assert result.quarantine["reason"].tolist() == ["duplicate (symbol, ts) in this batch"]


def test_dates_are_taken_in_the_exchange_time_zone():
    result = validate_bars(good_frame(1), {"AAA": "America/New_York"})
    assert result.good.loc[0, "ts"] == pd.Timestamp("2021-01-04T05:00Z")
    assert validate_bars(good_frame(1)).good.loc[0, "ts"] == pd.Timestamp("2021-01-04T00:00Z")


def test_explicit_offsets_win_and_dst_gaps_are_bad_rows():
    frame = good_frame(2)
    frame["ts"] = ["2021-01-04T09:30:00-05:00", "2021-03-14 02:30"]  # 02:30 does not exist in NY
    result = validate_bars(frame, {"AAA": "America/New_York"})
    assert result.good["ts"].tolist() == [pd.Timestamp("2021-01-04T14:30Z")]
    assert "nonexistent" in result.quarantine.loc[0, "reason"]


def test_adj_close_back_adjusts_ohlc():
    frame = good_frame(2).assign(adj_close=["50.0", "50.5"])
    good = validate_bars(frame).good
    assert good.loc[0, "close"] == pytest.approx(50.0)
    assert good.loc[0, "open"] == pytest.approx(99.5 * 0.5)


CORRUPTIONS = {
    "high": ("high >= max(open, close)", lambda r: {"high": str(float(r["close"]) - 5)}),
    "neg_volume": ("volume: must be >= 0", lambda r: {"volume": "-3"}),
    "nan_text": ("close: not a number", lambda r: {"close": "n/a"}),
    "bad_ts": ("ts: unparseable", lambda r: {"ts": "yesterday-ish"}),
    "zero_low": ("low: must be > 0", lambda r: {"low": "0"}),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=3, max_value=40),
    corrupt=st.dictionaries(
        st.integers(min_value=0, max_value=39), st.sampled_from(sorted(CORRUPTIONS)), max_size=10
    ),
    symbols=st.lists(st.sampled_from(["AAA", "BB", "CCCC"]), min_size=1, max_size=3, unique=True),
)
def test_generated_bad_frames_lose_nothing(n, corrupt, symbols):
    frame = pd.concat([good_frame(n, s) for s in symbols], ignore_index=True)
    expected = {}
    for row, kind in corrupt.items():
        if row >= len(frame):
            continue
        reason, change = CORRUPTIONS[kind]
        for column, value in change(frame.loc[row]).items():
            frame.loc[row, column] = value
        expected[row] = reason
    result = validate_bars(frame)
    assert len(result.good) + len(result.quarantine) == len(frame)
    assert len(result.quarantine) == len(expected)
    raws = [r["ts"] + "|" + str(r["symbol"]) for r in result.quarantine["raw"]]
    for row, reason in expected.items():
        key = str(frame.loc[row, "ts"]) + "|" + frame.loc[row, "symbol"]
        match = result.quarantine["reason"][[k == key for k in raws]]
        assert any(reason in text for text in match), (reason, match.tolist())
    assert (result.good["high"] >= result.good[["open", "close"]].max(axis=1)).all()
    assert not result.good.duplicated(["symbol", "ts"]).any()


def test_typed_times_in_a_zone_west_of_utc_are_converted():
    # yfinance answers in New York time; checking such values against pandas' bounds overflowed
    ts = pd.Series(pd.to_datetime(["2024-03-01 09:30"]).tz_localize("America/New_York"))
    raw = pd.DataFrame(
        {"symbol": ["A"], "ts": ts, "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
         "volume": [1.0]}
    )  # fmt: skip
    result = validate_bars(raw)
    assert result.quarantine.empty
    assert result.good["ts"].tolist() == [pd.Timestamp("2024-03-01 14:30", tz="UTC")]
