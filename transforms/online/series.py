"""The streaming twin of features.series_features: series features as known at each bar.

Releases (every vintage of market.series, in release order) are applied as bar time passes
them: a release at ``released_at`` is seen by the first bar with ``ts >= released_at``, as in
the dbt model. Per series the state is its ``depth`` most recent observations at their latest
vintage - exact, since an observation older than those cannot enter a window again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from transforms.spec import SeriesFeature


def series_value(f: SeriesFeature, latest_first: np.ndarray) -> float:
    """One feature from a series' observations, the latest first (docs/series.md)."""
    v, n = latest_first, f.length
    if f.kind == "value":
        return float(v[0]) if len(v) else np.nan
    if f.kind == "change":
        return float(v[0] - v[n]) if len(v) > n else np.nan
    if f.kind == "zscore":
        if len(v) < n:
            return np.nan
        sd = np.std(v[:n], ddof=1)
        return float((v[0] - np.mean(v[:n])) / sd) if sd != 0 else np.nan
    if f.kind == "surprise":
        return float(v[0] - np.mean(v[1 : n + 1])) if len(v) > n else np.nan
    raise ValueError(f"series feature {f.name}: unknown kind {f.kind!r}")


class _Series:
    """One series: its pending releases and its ``depth`` latest observations."""

    def __init__(self, releases: pd.DataFrame, depth: int) -> None:
        self.released = releases["released_at"].to_numpy("datetime64[us]")
        self.observed = releases["observed_at"].to_numpy("datetime64[us]")
        self.values = releases["value"].to_numpy(float)
        self.next = 0  # the first release not yet seen
        self.depth = depth
        self.known: dict[np.datetime64, float] = {}

    def advance(self, ts: np.datetime64) -> bool:
        """Apply the releases at or before ``ts``; True when any was applied."""
        end = int(np.searchsorted(self.released, ts, side="right"))
        if end == self.next:
            return False
        for i in range(self.next, end):  # release order: a later vintage overwrites
            self.known[self.observed[i]] = self.values[i]
        self.next = end
        keep = sorted(self.known, reverse=True)[: self.depth]
        self.known = {k: self.known[k] for k in keep}
        return True

    def latest_first(self) -> np.ndarray:
        return np.array([self.known[k] for k in sorted(self.known, reverse=True)])


class SeriesTwin:
    """Values of ``features`` at successive bar times (non-decreasing)."""

    def __init__(
        self, features: Sequence[SeriesFeature], releases: pd.DataFrame | None = None
    ) -> None:
        if releases is None:  # nothing ingested: every value stays undefined
            releases = pd.DataFrame(columns=["series_id", "observed_at", "released_at", "value"])
        self.features = tuple(features)
        self.columns = [f.name for f in self.features]
        depth: dict[str, int] = {}
        for f in self.features:
            depth[f.series] = max(depth.get(f.series, 0), f.depth)
        ordered = releases.sort_values(["released_at", "observed_at"], kind="stable")
        self._series = {s: _Series(ordered[ordered["series_id"] == s], d) for s, d in depth.items()}
        self._values = np.full(len(self.features), np.nan)

    def step(self, ts: dt.datetime | pd.Timestamp) -> np.ndarray:
        """The features at a bar time ``ts`` (every release at or before it seen)."""
        stamp = pd.Timestamp(ts)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        now = np.datetime64(stamp.tz_localize(None), "us")
        for name, series in self._series.items():
            if series.advance(now):
                history = series.latest_first()
                for j, f in enumerate(self.features):
                    if f.series == name:
                        self._values[j] = series_value(f, history)
        return self._values.copy()

    def replay(self, times: Sequence[pd.Timestamp]) -> pd.DataFrame:
        """One row per bar time (sorted), as features.series_features."""
        ordered = sorted(pd.Timestamp(t) for t in set(times))
        rows = [self.step(t) for t in ordered]
        frame = pd.DataFrame(rows, columns=self.columns)
        frame.insert(0, "ts", ordered)
        return frame
