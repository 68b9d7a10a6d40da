"""The cross-asset feature kinds: each symbol's return against the market or its sector.

The market return is the benchmark's when the spec names one, else the mean over the symbols with
a bar (as the SQL model feat_cross_asset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tests.support.online_reference.rolling import CoMoments, safe_div
from transforms.spec import Feature

KINDS = ("market", "rel_strength", "sector_relative")


class CrossAsset:
    """The ``cross_asset`` stage of a spec for a fixed universe, one cross-section at a time."""

    def __init__(
        self,
        features: Sequence[Feature],
        symbols: Sequence[str],
        columns: Mapping[str, int],
        sectors: Mapping[str, str | None],
        benchmark: str | None,
    ) -> None:
        n = len(symbols)
        self._features = list(features)
        self._col = columns
        self._pairs = {
            f.name: CoMoments(n, f.window)
            for f in self._features
            if f.kind in ("market", "rel_strength")
        }
        for f in self._features:
            if f.kind not in KINDS:
                raise ValueError(f"online engine: no updater for cross-asset kind {f.kind!r}")
        labels = [sectors.get(s) for s in symbols]
        self._sector_ids = {s: np.array([x == s for x in labels]) for s in set(labels) if s}
        self._benchmark = symbols.index(benchmark) if benchmark in symbols else None
        if benchmark and self._benchmark is None:
            raise ValueError(f"benchmark {benchmark!r} is not among the engine's symbols")

    def step(self, mask: np.ndarray, ret: np.ndarray, out: np.ndarray) -> None:
        """Write every cross-asset column of ``out`` from this cross-section's log returns."""
        r = np.where(mask, ret, np.nan)
        if self._benchmark is not None:
            mkt = r[self._benchmark]
        else:
            present = ~np.isnan(r)
            mkt = r[present].mean() if present.any() else np.nan
        m = np.full(len(r), mkt)
        for f in self._features:
            o = f.outputs
            if f.kind == "sector_relative":
                out[:, self._col[o[0]]] = self._sector_relative(r)
                continue
            pair = self._pairs[f.name]
            pair.push(mask, r, m)
            if f.kind == "market":
                cov, vr, vm = pair.stats()
                out[:, self._col[o[0]]] = safe_div(cov, np.sqrt(vr * vm))
                out[:, self._col[o[1]]] = safe_div(cov, vm)
            else:
                full = pair.full
                out[:, self._col[o[0]]] = np.where(full, pair.sx - pair.sy, np.nan)

    def _sector_relative(self, r: np.ndarray) -> np.ndarray:
        """Each return less its sector's mean return (NaN without a sector)."""
        rel = np.full(len(r), np.nan)
        for members in self._sector_ids.values():
            group = r[members]
            ok = ~np.isnan(group)
            if ok.any():
                rel[members] = group - group[ok].mean()
        return rel
