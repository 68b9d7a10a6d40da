"""The champion walk-forward source dates what a registered run saw from its tags (read as
``VersionMeta``) (trading it,
with real registered models: test_service.py)."""

from __future__ import annotations

from datetime import date

import numpy as np

from registry.meta import VersionMeta
from serving.champion_source import champion_label_end


def label_end(tags: dict[str, str], days: np.ndarray, horizon: int):
    return champion_label_end(VersionMeta.from_tags(tags), days, horizon)


def test_the_label_end_of_a_registered_run_is_its_tag_or_trained_through_plus_horizon():
    days = np.arange(np.datetime64("2012-01-01"), np.datetime64("2012-03-01"))
    assert label_end({"label_end": "2012-02-10T00:00:00"}, days, 5) == (
        None,
        date(2012, 2, 10),
    )
    tags = {"trained_through": "2012-01-10T00:00:00.000000"}
    assert label_end(tags, days, 5) == (date(2012, 1, 10), date(2012, 1, 15))
    late = {"trained_through": "2012-02-28"}  # labels cannot look past the last bar
    assert label_end(late, days, 5)[1] == date(2012, 2, 29)
    assert label_end({}, days, 5) == (None, None)
