"""Drift runs as stored in ``mlops.drift_results``: what the sensors read back is what the
check saved (measures in order, missing values, spans, the report's path), and the newest run
is the one they act on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitoring.drift_results import Measure, latest_run, load_report, save
from tests.support.drift import report

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB


def test_a_saved_run_reads_back_as_it_was_and_the_newest_run_is_latest(db_url):
    assert latest_run(db_url) is None
    first = report(data=True, run_id="r1")
    first.measures.append(Measure("attribution", "rsi_14", None, None, False))
    second = replace(report(decayed=True, run_id="r2"), path=None)
    save(db_url, first)
    save(db_url, second)
    assert latest_run(db_url) == "r2"
    assert [load_report(db_url, run) for run in ("r1", "r2")] == [first, second]
    with pytest.raises(LookupError, match="no drift run 'r3'"):
        load_report(db_url, "r3")
