"""What the monitor would have said on each past bar: the drift checks replayed as of every
``every``-th bar after ``start``, on one read of the training set. A backfill of
mlops.drift_results after an outage, and the way to measure how soon a change is caught."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitoring.drift import check_drift, drift_data, make_baseline
from monitoring.drift_results import DriftReport
from monitoring.settings import DriftSettings
from training.settings import TrackingSettings

# the kinds that call for a retrain (performance decay is a demotion, attribution is shown)
RETRAIN_KINDS = ("data", "prediction")


@dataclass(frozen=True)
class Replay:
    reports: list[DriftReport]

    def alarms(self, kinds=RETRAIN_KINDS) -> list[DriftReport]:
        return [r for r in self.reports if any(r.drifted(k) for k in kinds)]

    def first_alarm(self, kinds=RETRAIN_KINDS) -> DriftReport | None:
        found = self.alarms(kinds)
        return found[0] if found else None


def bars_after(data, start: datetime, end: datetime | None = None) -> list[datetime]:
    """The bar times of the training set after ``start`` through ``end``."""
    times = np.unique(data.ts)
    keep = times > np.datetime64(start.replace(tzinfo=None), "us")
    if end is not None:
        keep &= times <= np.datetime64(end.replace(tzinfo=None), "us")
    return [t.astype("datetime64[us]").item().replace(tzinfo=UTC) for t in times[keep]]


def replay(
    url: str,
    start: datetime,
    settings: DriftSettings,
    reports: Path,
    model,
    end: datetime | None = None,
    every: int = 1,
    until_alarm: bool = False,
    progress: Callable[[int, int, DriftReport], None] | None = None,
    html: bool | None = None,
    *,
    tracking: TrackingSettings,
) -> Replay:
    """One drift run (stored in mlops.drift_results) as of every ``every``-th bar after
    ``start``, against one baseline; ``until_alarm`` stops at the first that calls for a
    retrain; ``model``: the entry point's (the champion). ``html``: True/False for every run;
    None writes the pages of the runs that drifted and of the last; ``tracking``: the MLflow
    store, as for :func:`check_drift`."""
    if every < 1:
        raise ValueError(f"every must be at least 1 bar, got {every}")
    data = drift_data(url, settings)
    bars = bars_after(data, start, end)[every - 1 :: every]
    if not bars:
        raise ValueError(f"no bars after {start:%Y-%m-%d %H:%M} in features.training_set")
    baseline = make_baseline(data, model, settings)
    done: list[DriftReport] = []
    for k, bar in enumerate(bars):
        # by default an HTML page for the runs that drifted and for the last one
        page = (None if k < len(bars) - 1 else True) if html is None else html
        report = check_drift(
            url, settings, reports, model, bar, data, baseline, page, tracking=tracking
        )
        done.append(report)
        if progress is not None:
            progress(k + 1, len(bars), report)
        if until_alarm and any(report.drifted(kind) for kind in RETRAIN_KINDS):
            break
    return Replay(done)
