"""The online feature engine as plain numpy, kept as the reference for the numba version.

The streaming twin of features.bar_features: every feature of the spec, updated bar by bar.

One ``update`` takes a cross-section (all symbols at one timestamp) and advances fixed-size state
per symbol - recursion values, ring buffers, running sums - vectorized across symbols with numpy.
Nothing is recomputed over history. Formulas and operation order follow docs/features.md and
the SQL in transforms/dbt, so replaying the history reproduces the table (see the parity test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tests.support.online_reference.cross_asset import CrossAsset
from tests.support.online_reference.recursive import recursive_updater
from tests.support.online_reference.rolling import Bar, Updater
from tests.support.online_reference.windowed import windowed_updater
from transforms.garch import Fit, GarchFilter
from transforms.online.calendar import calendar_row
from transforms.spec import CALENDAR_COLUMNS, FeatureSpec, default_spec


class NumpyEngine:
    """transforms.online.OnlineFeatureEngine as it was before issue 29 (numpy, one updater per
    spec entry): the oracle the numba kernels are compared with, value for value."""

    def __init__(
        self,
        symbols: Sequence[str],
        spec: FeatureSpec | None = None,
        *,
        sectors: Mapping[str, str | None] | None = None,
        exchange_tz: Mapping[str, str] | None = None,
        garch_fits: Mapping[str, Sequence[Fit]] | None = None,
    ) -> None:
        self.spec = spec or default_spec()
        self.symbols = list(symbols)
        n = len(self.symbols)
        self.columns = self.spec.columns()
        self._col = {c: i for i, c in enumerate(self.columns)}
        self._prev = {k: np.full(n, np.nan) for k in ("close", "high", "low")}
        self._updaters: list[Updater] = []
        for f in self.spec.features:
            if f.stage == "recursive":
                self._updaters.append(recursive_updater(f, n))
            elif f.stage == "windowed":
                self._updaters.append(windowed_updater(f, n, self.spec.bars_per_year))
        self._cross = CrossAsset(
            self.spec.stage("cross_asset"),
            self.symbols,
            self._col,
            sectors or {},
            self.spec.benchmark,
        )
        tz = exchange_tz or {}
        zones = [tz.get(s, "UTC") for s in self.symbols]
        self._zones = {z: np.array([x == z for x in zones]) for z in set(zones)}
        self._garch = GarchFilter(self.symbols, self.spec.bars_per_year, garch_fits)

    def update(
        self,
        ts: dt.datetime | pd.Timestamp,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance one cross-section; returns (symbols x columns), NaN where undefined."""
        close = np.asarray(close, dtype=float)
        mask = ~np.isnan(close) if mask is None else np.asarray(mask, dtype=bool)
        prev_close = self._prev["close"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.log(close / prev_close)
        bar: Bar = {
            "open": np.asarray(open, dtype=float),
            "high": np.asarray(high, dtype=float),
            "low": np.asarray(low, dtype=float),
            "close": close,
            "volume": np.asarray(volume, dtype=float),
            "prev_close": prev_close,
            "prev_high": self._prev["high"],
            "prev_low": self._prev["low"],
            "ret": ret,
        }
        out = np.full((len(self.symbols), len(self.columns)), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            for updater in self._updaters:
                for column, values in updater(mask, bar).items():
                    out[:, self._col[column]] = values
            self._cross.step(mask, ret, out)
        self._calendar(ts, out)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.log(close / prev_close) * 100  # as transforms.garch.percent_log_returns
        out[:, self._col[self.spec.garch.name]] = self._garch.step(ts, mask, pct)
        for key, values in (("close", close), ("high", bar["high"]), ("low", bar["low"])):
            self._prev[key] = np.where(mask, values, self._prev[key])
        out[~mask] = np.nan
        return out

    def _calendar(self, ts: dt.datetime | pd.Timestamp, out: np.ndarray) -> None:
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        cols = [self._col[c] for c in CALENDAR_COLUMNS]
        before, after = self.spec.turn_of_month_before, self.spec.turn_of_month_after
        for zone, members in self._zones.items():
            day = stamp.tz_convert(zone).date()
            out[np.ix_(members, cols)] = calendar_row(day, before, after)
