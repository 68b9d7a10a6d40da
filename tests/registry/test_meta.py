"""VersionMeta reads the tags training writes, and tags older runs lack."""

from __future__ import annotations

from datetime import UTC, datetime

from registry.meta import VersionMeta


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
