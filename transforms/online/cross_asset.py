"""The cross-asset feature kinds: each symbol's return against the market or its sector.

The market return is the benchmark's when the spec names one, else the mean over the symbols with
a bar (as the SQL model feat_cross_asset). Means over symbols are :func:`pairwise_sum` over the
present values in symbol order, as numpy's ``mean`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from transforms.online.rolling import kernel, nan_to_num, nmax, pairwise_sum, safe_div
from transforms.spec import Feature

KINDS = ("market", "rel_strength", "sector_relative")


class CoMoments:
    """Rolling sums of a pair (x, y) over ``size`` bars where both are present: the arrays
    :func:`_pair_kernel` advances (sums' columns: x, y, xx, yy, xy)."""

    def __init__(self, n: int, size: int) -> None:
        self.xbuf, self.ybuf = np.full((n, size), np.nan), np.full((n, size), np.nan)
        self.pos = np.zeros(n, dtype=np.int64)
        self.stagger = np.arange(n, dtype=np.int64) % size
        self.sums = np.zeros((n, 5))
        self.valid = np.zeros(n, dtype=np.int64)
        self.tmp = np.empty((3, size))  # scratch for a re-centring

    def state(self) -> tuple[np.ndarray, ...]:
        return self.xbuf, self.ybuf, self.pos, self.stagger, self.sums, self.valid, self.tmp


@kernel
def _resum(xbuf: np.ndarray, ybuf: np.ndarray, sums: np.ndarray, tmp: np.ndarray, i: int) -> None:
    """Row ``i``'s sums recomputed from its window (NaN as 0), bounding drift."""
    size = xbuf.shape[1]
    for j in range(size):
        tmp[0, j], tmp[1, j] = nan_to_num(xbuf[i, j]), nan_to_num(ybuf[i, j])
    sums[i, 0], sums[i, 1] = pairwise_sum(tmp[0], 0, size), pairwise_sum(tmp[1], 0, size)
    for k, (a, b) in enumerate(((0, 0), (1, 1), (0, 1))):
        for j in range(size):
            tmp[2, j] = tmp[a, j] * tmp[b, j]
        sums[i, 2 + k] = pairwise_sum(tmp[2], 0, size)


@kernel
def _pair_kernel(
    mask: np.ndarray,
    r: np.ndarray,
    mkt: float,
    xbuf: np.ndarray,
    ybuf: np.ndarray,
    pos: np.ndarray,
    stagger: np.ndarray,
    sums: np.ndarray,
    valid: np.ndarray,
    tmp: np.ndarray,
    market: bool,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    """Push (r, mkt) for the masked symbols; write correlation and beta (``market``) or
    relative strength, NaN until the window is full."""
    size = xbuf.shape[1]
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        both = np.nan if np.isnan(r[i]) or np.isnan(mkt) else 1.0
        x, y = r[i] * both, mkt * both
        p = pos[i]
        ox, oy = xbuf[i, p], ybuf[i, p]
        xbuf[i, p], ybuf[i, p] = x, y
        pos[i] = p + 1 if p + 1 < size else 0
        ok_new, ok_old = not np.isnan(x), not np.isnan(ox)
        nx, ny = (x, y) if ok_new else (0.0, 0.0)
        ox, oy = (ox, oy) if ok_old else (0.0, 0.0)
        sums[i, 0] += nx - ox
        sums[i, 1] += ny - oy
        sums[i, 2] += nx * nx - ox * ox
        sums[i, 3] += ny * ny - oy * oy
        sums[i, 4] += nx * ny - ox * oy
        valid[i] += (1 if ok_new else 0) - (1 if ok_old else 0)
        if pos[i] == stagger[i]:
            _resum(xbuf, ybuf, sums, tmp, i)
        if valid[i] != size:
            continue
        sx, sy, sxx, syy, sxy = sums[i, 0], sums[i, 1], sums[i, 2], sums[i, 3], sums[i, 4]
        if not market:
            out[cols[0], i] = sx - sy
            continue
        cov = (sxy - sx * sy / size) / (size - 1)
        vx = nmax(sxx - sx * sx / size, 0.0) / (size - 1)
        vy = nmax(syy - sy * sy / size, 0.0) / (size - 1)
        out[cols[0], i] = safe_div(cov, np.sqrt(vx * vy))
        out[cols[1], i] = safe_div(cov, vy)


@kernel
def _group_mean(r: np.ndarray, members: np.ndarray, tmp: np.ndarray) -> float:
    """Mean of ``r`` over ``members`` where present (NaN if none): numpy's ``r[ok].mean()``."""
    k = 0
    for j in members:
        if not np.isnan(r[j]):
            tmp[k] = r[j]
            k += 1
    return pairwise_sum(tmp, 0, k) / k if k else np.nan


@kernel
def _sector_kernel(
    r: np.ndarray,
    members: np.ndarray,
    offsets: np.ndarray,
    tmp: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """Each return less its sector's mean return (NaN without a sector)."""
    for s in range(offsets.shape[0] - 1):
        group = members[offsets[s] : offsets[s + 1]]
        mean = _group_mean(r, group, tmp)
        for j in group:
            out[col, j] = r[j] - mean


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
        for f in features:
            if f.kind not in KINDS:
                raise ValueError(f"online engine: no updater for cross-asset kind {f.kind!r}")
        self._steps = [
            (f.kind, np.array([columns[c] for c in f.outputs], dtype=np.int64),
             CoMoments(n, f.window).state() if f.kind != "sector_relative" else ())
            for f in features
        ]  # fmt: skip
        labels = [sectors.get(s) for s in symbols]
        groups = [
            np.flatnonzero([x == s for x in labels]) for s in sorted({x for x in labels if x})
        ]
        self._members = np.concatenate([np.zeros(0, dtype=np.int64), *groups]).astype(np.int64)
        self._offsets = np.cumsum([0, *(len(g) for g in groups)], dtype=np.int64)
        self._all = np.arange(n, dtype=np.int64)
        self._tmp = np.empty(n)
        self._benchmark = symbols.index(benchmark) if benchmark in symbols else None
        if benchmark and self._benchmark is None:
            raise ValueError(f"benchmark {benchmark!r} is not among the engine's symbols")

    def step(self, mask: np.ndarray, ret: np.ndarray, out: np.ndarray) -> None:
        """Write every cross-asset column of ``out`` from this cross-section's log returns."""
        r = np.where(mask, ret, np.nan)
        if self._benchmark is not None:
            mkt = float(r[self._benchmark])
        else:
            mkt = _group_mean(r, self._all, self._tmp)
        for kind, cols, state in self._steps:
            if kind == "sector_relative":
                _sector_kernel(r, self._members, self._offsets, self._tmp, out, cols[0])
            else:
                _pair_kernel(mask, r, mkt, *state, kind == "market", out, cols)
