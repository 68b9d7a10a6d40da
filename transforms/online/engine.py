"""The streaming twin of features.bar_features: every feature of the spec, updated bar by bar.

One ``update`` takes a cross-section (all symbols at one timestamp) and advances fixed-size state
per symbol - recursion values, ring buffers, running sums - with one compiled kernel per spec entry
looping over the symbols (transforms/online/rolling.py says how it stays on one core and equal to
the numpy version). Nothing is recomputed over history. Formulas and operation order follow
docs/features.md and the SQL in transforms/dbt, so replaying the history reproduces the table
(see the parity test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from transforms.garch import Fit, GarchFilter, load_fits
from transforms.online.calendar import calendar_row
from transforms.online.cross_asset import CrossAsset
from transforms.online.recursive import recursive_updater
from transforms.online.rolling import Bar, Updater
from transforms.online.series import SeriesTwin
from transforms.online.windowed import windowed_updater
from transforms.spec import CALENDAR_COLUMNS, FeatureSpec, default_spec
from warehouse.db import connect
from warehouse.reads import read_bars
from warehouse.series import read_series


class OnlineFeatureEngine:
    """Every column of ``spec.columns()`` for a fixed universe, one cross-section at a time."""

    def __init__(
        self,
        symbols: Sequence[str],
        spec: FeatureSpec | None = None,
        *,
        sectors: Mapping[str, str | None] | None = None,
        exchange_tz: Mapping[str, str] | None = None,
        garch_fits: Mapping[str, Sequence[Fit]] | None = None,
        series_releases: pd.DataFrame | None = None,
    ) -> None:
        self.spec = spec or default_spec()
        self.symbols = list(symbols)
        n = len(self.symbols)
        self.columns = self.spec.columns()
        self._col = {c: i for i, c in enumerate(self.columns)}
        self._prev = {k: np.full(n, np.nan) for k in ("close", "high", "low")}
        self._updaters: list[Updater] = []
        for f in self.spec.features:
            cols = np.array([self._col[c] for c in f.outputs], dtype=np.int64)
            if f.stage == "recursive":
                self._updaters.append(recursive_updater(f, n, cols))
            elif f.stage == "windowed":
                self._updaters.append(windowed_updater(f, n, cols, self.spec.bars_per_year))
        self._cross = CrossAsset(
            self.spec.stage("cross_asset"),
            self.symbols,
            self._col,
            sectors or {},
            self.spec.benchmark,
        )
        tz = exchange_tz or {}
        zones = [tz.get(s, "UTC") for s in self.symbols]
        cal = np.array([self._col[c] for c in CALENDAR_COLUMNS])
        self._zones: dict[str, tuple] = {}  # where a zone's row goes in the (columns x symbols)
        for zone in set(zones):
            members = np.flatnonzero([x == zone for x in zones])
            self._zones[zone] = (cal, slice(None)) if len(members) == n else np.ix_(cal, members)
        self._garch = GarchFilter(self.symbols, self.spec.bars_per_year, garch_fits)
        # market-wide series, as known at each bar (only when the spec trains on them)
        series = self.spec.series.features if self.spec.series.train else ()
        self._series = SeriesTwin(series, series_releases)
        self._series_cols = [self._col[f.name] for f in series]

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
        close = np.ascontiguousarray(close, dtype=float)
        mask = ~np.isnan(close) if mask is None else np.ascontiguousarray(mask, dtype=bool)
        prev_close = self._prev["close"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.log(close / prev_close)
        bar: Bar = {
            "open": np.ascontiguousarray(open, dtype=float),
            "high": np.ascontiguousarray(high, dtype=float),
            "low": np.ascontiguousarray(low, dtype=float),
            "close": close,
            "volume": np.ascontiguousarray(volume, dtype=float),
            "prev_close": prev_close,
            "prev_high": self._prev["high"],
            "prev_low": self._prev["low"],
            "ret": ret,
        }
        # column-major: each kernel writes its columns along the symbols; callers get the
        # transpose, (symbols x columns) whose columns are contiguous
        out = np.full((len(self.columns), len(self.symbols)), np.nan)
        for updater in self._updaters:
            updater(mask, bar, out)
        self._cross.step(mask, ret, out)
        self._calendar(ts, out)
        pct = ret * 100  # as transforms.garch.percent_log_returns
        out[self._col[self.spec.garch.name]] = self._garch.step(ts, mask, pct)
        if self._series_cols:
            out[self._series_cols] = self._series.step(ts)[:, None]
        for key, values in (("close", close), ("high", bar["high"]), ("low", bar["low"])):
            self._prev[key] = np.where(mask, values, self._prev[key])
        out[:, ~mask] = np.nan
        return out.T

    def _calendar(self, ts: dt.datetime | pd.Timestamp, out: np.ndarray) -> None:
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        before, after = self.spec.turn_of_month_before, self.spec.turn_of_month_after
        for zone, where in self._zones.items():
            day = stamp.tz_convert(zone).date()
            out[where] = np.array(calendar_row(day, before, after))[:, None]

    def replay(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Feed bars (symbol, ts, open, high, low, close, volume) in time order; one row per bar."""
        frames = []
        fields = ("open", "high", "low", "close", "volume")
        wide = bars.pivot(index="ts", columns="symbol", values=list(fields)).sort_index()
        wide = wide.reindex(columns=pd.MultiIndex.from_product([fields, self.symbols]))
        arrays = {k: wide[k].to_numpy(float) for k in fields}
        for i, ts in enumerate(wide.index):
            row = {k: v[i] for k, v in arrays.items()}
            values = self.update(ts, **row)
            mask = ~np.isnan(row["close"])
            frame = pd.DataFrame(values[mask], columns=self.columns)
            frame.insert(0, "ts", ts)
            frame.insert(0, "symbol", np.asarray(self.symbols)[mask])
            frames.append(frame)
        result = pd.concat(frames, ignore_index=True)
        return result.sort_values(["symbol", "ts"], ignore_index=True)

    @classmethod
    def from_warehouse(
        cls,
        url: str,
        symbols: Sequence[str] | None = None,
        spec: FeatureSpec | None = None,
        *,
        warm_up: bool = True,
    ) -> OnlineFeatureEngine:
        """An engine for ``symbols`` (sectors, time zones, GARCH fits and, when the spec trains
        on them, series releases from the warehouse), warmed up on every stored bar unless
        ``warm_up`` is false."""
        with connect(url) as conn:
            rows = conn.execute(
                "select symbol, sector, exchange_tz from market.instruments order by symbol"
            ).fetchall()
        info = {s: (sector, tz) for s, sector, tz in rows if not symbols or s in symbols}
        spec = spec or default_spec()
        series = spec.series.train and spec.series.features
        names = sorted(info)
        engine = cls(
            names,
            spec,
            sectors={s: v[0] for s, v in info.items()},
            exchange_tz={s: v[1] for s, v in info.items()},
            garch_fits=load_fits(url, names),
            series_releases=read_series(url, list(spec.series.depths())) if series else None,
        )
        if warm_up:
            bars = read_bars(url, names).to_pandas()
            if len(bars):
                engine.replay(bars)
        return engine
