"""Files as they come: wide panels (CSV, Parquet) and close-only long files, read and validated
without a database (tests/transforms/test_price_panels.py takes one through to the training set)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.providers import DataSourceError, FileProvider
from warehouse.validation import validate_bars

PANEL = pd.DataFrame(
    {"AAA": [10.0, 10.5, np.nan, 11.0], "BBB": [np.nan, 20.0, 20.5, -1.0]},
    index=pd.DatetimeIndex(pd.date_range("2021-01-04", periods=4, freq="B"), name="Date"),
)


def read(path, kind: str, **options) -> pd.DataFrame:
    """Every piece the provider hands over, validated; (good rows, quarantine)."""
    pieces = list(FileProvider(path, kind, **options).chunks(None, 1 << 20))
    frames = [p for p in pieces if len(p.frame)]
    frame = pd.concat([p.frame for p in frames], ignore_index=True)
    original = pd.concat([p.original for p in frames], ignore_index=True)
    return validate_bars(frame, original=original)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_wide_panel_is_one_close_per_cell(tmp_path, kind):
    path = tmp_path / f"panel.{kind}"
    PANEL.to_csv(path) if kind == "csv" else PANEL.to_parquet(path)  # dates: the index
    result = read(path, kind)
    good = result.good
    assert list(good["symbol"]) == ["AAA"] * 3 + ["BBB"] * 2  # empty cells are no bar
    assert good["close"].tolist() == [10.0, 10.5, 11.0, 20.0, 20.5]
    assert good[["open", "high", "low", "volume"]].isna().all().all()
    assert list(result.quarantine["reason"]) == ["close: must be > 0"]
    raw = result.quarantine["raw"][0]
    assert raw["symbol"] == "BBB" and float(raw["close"]) == -1.0 and "Date" in raw


def test_layout_wide_reads_a_panel_auto_would_not(tmp_path):
    """A panel whose symbols include a known header (a ticker VOL) is wide only when told."""
    path = tmp_path / "vol.csv"
    path.write_text("Date,VOL,XYZ\n2021-01-04,1.5,2\n")
    with pytest.raises(DataSourceError, match="missing required column"):
        read(path, "csv")
    assert sorted(read(path, "csv", layout="wide").good["symbol"]) == ["VOL", "XYZ"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Name,AAA\nx,1\n", "a wide file needs a date column"),
        ("Date\n2021-01-04\n", "one column per symbol"),
        ("Date,AAA,\n2021-01-04,1,2\n", "without a symbol name"),
        ("Ticker,Date,Open\nA,2021-01-04,1\n", "missing required column(s): close"),
    ],
)
def test_files_that_fit_no_layout_fail_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    layout = "wide" if text.startswith("Name") else "auto"
    with pytest.raises(DataSourceError) as info:
        read(path, "csv", layout=layout)
    assert message in str(info.value) and str(path) in str(info.value)


def test_close_only_long_rows_check_the_prices_they_have(tmp_path):
    """OHLC consistency compares what a row has; a column the file has needs every value."""
    path = tmp_path / "long.csv"
    path.write_text(
        "symbol,date,high,close\n"
        "AAA,2021-01-04,11,10\n"  # good: high >= close
        "AAA,2021-01-05,9,10\n"  # high below close
        "AAA,2021-01-06,,10\n"  # the file has highs: a blank one is missing
        "BBB,2021-01-04,5,0\n"  # close must be > 0
    )
    result = read(path, "csv")
    assert result.good[["symbol", "high", "close"]].values.tolist() == [["AAA", 11.0, 10.0]]
    assert result.good[["open", "low", "volume"]].isna().all().all()
    assert sorted(result.quarantine["reason"]) == [
        "close: must be > 0",
        "high >= max(open, close)",
        "high: missing",
    ]
