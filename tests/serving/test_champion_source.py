"""The champion walk-forward source dates what a registered run saw from its tagged
trained_through and label_end (trading it, with real registered models: test_service.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from serving.champion_source import champion_label_end


def label_end(tags: dict[str, datetime], days: np.ndarray, horizon: int):
    return champion_label_end(tags.get("trained_through"), tags.get("label_end"), days, horizon)


def test_the_label_end_of_a_registered_run_is_its_tag_or_trained_through_plus_horizon():
    days = np.arange(np.datetime64("2012-01-01"), np.datetime64("2012-03-01"))
    assert label_end({"label_end": datetime(2012, 2, 10, tzinfo=UTC)}, days, 5) == (
        None,
        date(2012, 2, 10),
    )
    tags = {"trained_through": datetime(2012, 1, 10, tzinfo=UTC)}
    assert label_end(tags, days, 5) == (date(2012, 1, 10), date(2012, 1, 15))
    late = {"trained_through": datetime(2012, 2, 28, tzinfo=UTC)}  # no label past the last bar
    assert label_end(late, days, 5)[1] == date(2012, 2, 29)
    assert label_end({}, days, 5) == (None, None)
