"""Labels against pandas: forward return, direction and volatility per horizon, recomputed from
``market.bars`` closes (adjusted at ingest) with ``shift``; a label shifted by one bar must fail
the same comparison, so an off-by-one in ``labels.sql`` cannot pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.support.bars import read_table
from transforms.spec import default_spec

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB

SPEC = default_spec()


@pytest.fixture(scope="module")
def tables(built) -> dict[str, pd.DataFrame]:
    """market.bars, features.labels and features.training_set of the full build."""
    url, _ = built
    names = {"bars": "market.bars", "labels": "features.labels"}
    names["training_set"] = "features.training_set"
    return {key: read_table(url, table) for key, table in names.items()}


def label_reference(bars: pd.DataFrame, lag: int = 0) -> pd.DataFrame:
    """Every label column for ``bars`` (ordered by symbol, ts) from docs/features.md.

    ``lag`` moves each symbol's labels in time: the row of bar t gets the label of bar t + lag
    (0 is the definition; +-1 is the off-by-one a review worried about).
    """
    parts = []
    for _, rows in bars.groupby("symbol", sort=True):
        c = rows["close"].astype(float).reset_index(drop=True)
        r = np.log(c / c.shift())
        part = {}
        for h in SPEC.horizons:
            ret = np.log(c.shift(-h) / c)
            part[f"fwd_ret_{h}"] = ret
            part[f"fwd_dir_{h}"] = np.sign(ret)
            # term by term, not pandas' running window (it cancels when a big return leaves)
            mean_sq = sum(r.shift(-k) ** 2 for k in range(1, h + 1)) / h
            part[f"fwd_vol_{h}"] = np.sqrt(mean_sq * SPEC.bars_per_year)
        parts.append(pd.DataFrame(part)[SPEC.label_columns()].shift(-lag))
    return pd.concat(parts, ignore_index=True)


def matching(ours: pd.Series, reference: pd.Series) -> pd.Series:
    """Row by row: both null, or equal within 1e-12 relative."""
    a, b = ours.astype(float), reference.astype(float)
    close = np.isclose(a, b, rtol=1e-12, atol=0)
    return pd.Series(close | (a.isna() & b.isna()), index=ours.index)


def test_labels_match_pandas(tables):
    labels, bars = tables["labels"], tables["bars"]
    assert (labels[["symbol", "ts"]] == bars[["symbol", "ts"]]).all().all()
    reference = label_reference(bars)
    assert list(labels.columns[2:]) == list(reference.columns)
    wrong = {c: int((~matching(labels[c], reference[c])).sum()) for c in reference.columns}
    assert not any(wrong.values()), {c: n for c, n in wrong.items() if n}
    for h in SPEC.horizons:  # null exactly for the last h bars of each symbol
        last = labels.groupby("symbol").cumcount(ascending=False) < h
        assert (labels.loc[last, f"fwd_ret_{h}"].isna()).all()
        assert labels.loc[~last, [f"fwd_ret_{h}", f"fwd_vol_{h}"]].notna().all().all()


@pytest.mark.parametrize("lag", [-1, 1])
def test_a_label_shifted_by_one_bar_fails(tables, lag):
    """The check above separates bar t's label from its neighbours' on almost every row."""
    labels, reference = tables["labels"], label_reference(tables["bars"], lag)
    for column in reference.columns:
        both = labels[column].notna() & reference[column].notna()
        agree = matching(labels.loc[both, column], reference.loc[both, column]).mean()
        # a direction often survives a one-bar shift (fwd_ret_20 shares 19 of its 20 returns)
        limit = 0.95 if column.startswith("fwd_dir") else 0.01
        assert agree < limit, f"{column}: shifted by {lag} agrees on {agree:.1%} of rows"


def test_fwd_ret_1_is_the_next_bars_return(tables):
    """The label at t is the feature ret_1 of bar t + 1: a bar after t, never t itself."""
    frame = tables["training_set"]
    next_ret = frame.groupby("symbol")["ret_1"].shift(-1)
    assert matching(frame["fwd_ret_1"], next_ret).all()
    same_bar = matching(frame["fwd_ret_1"], frame["ret_1"])
    assert same_bar.mean() < 0.01


def test_training_set_carries_the_labels(tables):
    training, labels = tables["training_set"], tables["labels"]
    assert len(training) == len(labels)
    joined = training[["symbol", "ts", *SPEC.label_columns()]].merge(
        labels, on=["symbol", "ts"], suffixes=("", "_label")
    )
    for column in SPEC.label_columns():
        assert matching(joined[column], joined[f"{column}_label"]).all(), column
