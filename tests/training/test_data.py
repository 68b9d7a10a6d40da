"""Reading the training set through Arrow: same numbers as pandas.read_sql, aligned arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from training.data import load_training_data
from transforms.spec import default_spec

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB


def test_arrow_read_matches_read_sql(built):
    url, _ = built
    data = load_training_data(url, symbols=["IBM", "MSFT"])
    spec = default_spec()
    assert len(data) == 2 * 3270 and data.features.dtype == np.float32
    assert data.features.shape[1] == len(spec.columns()) and data.returns.shape[1] == 5
    with psycopg.connect(url) as conn:
        frame = pd.read_sql_query(
            "select * from features.training_set where symbol in ('IBM', 'MSFT') "
            "order by symbol, ts",
            conn,
        )
    expected = frame[list(spec.columns())].astype(float).to_numpy(np.float32)
    np.testing.assert_array_equal(data.features, expected)
    np.testing.assert_array_equal(data.returns[:, 0], frame["fwd_ret_1"].to_numpy(np.float32))
    assert (data.symbols == frame["symbol"].to_numpy()).all()
    ts = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None).to_numpy("datetime64[us]")
    assert (data.ts == ts).all()
    assert data.row_in_symbol[0] == 0 and data.row_in_symbol[3270] == 0
    assert data.row_in_symbol[3269] == 3269


def test_labels_only_are_the_labels_without_the_features(built):
    """What promotion reads to score a version's out-of-sample forecasts: the labels of the
    same rows, without the feature columns (a universe's features would be most of it)."""
    url, _ = built
    full = load_training_data(url, symbols=["IBM", "MSFT"])
    labels = load_training_data(url, symbols=["IBM", "MSFT"], labels_only=True)
    assert labels.features.shape == (len(full), 0) and labels.feature_names == ()
    for name in ("symbols", "ts", "returns", "volatility"):
        np.testing.assert_array_equal(getattr(labels, name), getattr(full, name))
