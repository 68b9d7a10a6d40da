"""VersionMeta reads the tags training writes, and tags older runs lack, and writes them back
as training always has."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from training.lineage import VersionMeta, moment, stamp


def test_the_tags_of_a_trained_version_parse_into_typed_fields():
    run = {
        "model_family": "xgboost",
        "trained_through": "2012-03-30 00:00:00",
        "label_end": "2012-04-09 00:00:00",
        "symbols": "AAPL,MSFT",
        "feature_spec_sha256": "abc123",
        "tuning_trials": "50",
    }
    meta = VersionMeta.from_tags(run)
    assert meta.family == "xgboost"
    assert meta.trained_through == datetime(2012, 3, 30, tzinfo=UTC)
    assert meta.label_end == datetime(2012, 4, 9, tzinfo=UTC)
    assert meta.symbols == ("AAPL", "MSFT")
    assert meta.spec_hash == "abc123"
    assert meta.tuning_trials == 50
    assert meta.update_of is None


def test_missing_tags_are_empty_and_the_version_tags_win():
    meta = VersionMeta.from_tags({"tuning_trials": ""}, {"update_of": "3"})
    assert (meta.trained_through, meta.label_end, meta.symbols) == (None, None, ())
    assert meta.tuning_trials == 0 and meta.update_of == "3"
    updated = VersionMeta.from_tags(
        {"trained_through": "2012-01-02"}, {"trained_through": "2012-02-01"}
    )
    assert updated.trained_through == datetime(2012, 2, 1, tzinfo=UTC)


def test_tags_written_read_back_byte_identical():
    bar = np.datetime64("2012-03-30T00:00:00", "us")
    assert stamp(bar) == str(bar) == "2012-03-30T00:00:00.000000"
    assert stamp(moment(bar)) == str(bar)
    run = {
        "model_family": "xgboost",
        "trained_through": str(bar),
        "label_end": "2012-04-09T00:00:00.000000",
        "symbols": "AAPL,MSFT",
        "feature_spec_sha256": "abc123",
        "tuning_trials": "50",
        "update_of": "2",
    }
    assert VersionMeta.from_tags(run).to_tags() == run


def test_unknown_fields_are_not_written():
    meta = VersionMeta.from_tags({"model_family": "lstm"})
    assert meta.to_tags() == {"model_family": "lstm", "tuning_trials": "0"}
