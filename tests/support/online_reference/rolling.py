"""Fixed-size per-symbol state the feature families share: ring buffers and rolling sums.

Every structure holds one row per symbol and is advanced for the symbols a cross-section masks in,
so its size never grows with history.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Bar = dict[str, np.ndarray]  # open/high/low/close/volume, prev_* and ret for one cross-section
# one per spec entry: step(mask, bar) -> {column: values}, every column of the entry
Updater = Callable[[np.ndarray, Bar], dict[str, np.ndarray]]


class Ring:
    """The last ``size`` values of one series per symbol (NaN until written)."""

    def __init__(self, n: int, size: int) -> None:
        self.buf = np.full((n, size), np.nan)
        self.size = size
        self.pos = np.zeros(n, dtype=np.int64)
        self.rows = np.arange(n)

    def push(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Write ``x`` for masked symbols; returns the values they overwrote."""
        rows, pos = self.rows[mask], self.pos[mask]
        old = self.buf[rows, pos]
        self.buf[rows, pos] = x[mask]
        self.pos[mask] = (pos + 1) % self.size
        return old

    def oldest(self) -> np.ndarray:
        """The value ``size`` bars back (next to be overwritten)."""
        return self.buf[self.rows, self.pos]


class Moments:
    """Rolling sums of x and x^2 over ``size`` bars, O(1) per bar.

    Sums are kept around a per-symbol reference, re-centred from the ring once per ``size`` bars
    (at a position staggered by symbol, so the cost is spread over bars), which bounds both drift
    and cancellation far below 1e-9.
    """

    def __init__(self, n: int, size: int) -> None:
        self.ring = Ring(n, size)
        self.stagger = np.arange(n) % size
        self.size = size
        self.ref = np.zeros(n)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        self.valid = np.zeros(n, dtype=np.int64)

    def push(self, mask: np.ndarray, x: np.ndarray) -> None:
        old = self.ring.push(mask, x)
        new = x[mask]
        ref = self.ref[mask]
        d_new = np.where(np.isnan(new), 0.0, new - ref)
        d_old = np.where(np.isnan(old), 0.0, old - ref)
        self.s1[mask] += d_new - d_old
        self.s2[mask] += d_new * d_new - d_old * d_old
        self.valid[mask] += (~np.isnan(new)).astype(np.int64) - (~np.isnan(old)).astype(np.int64)
        wrapped = mask & (self.ring.pos == self.stagger)
        if wrapped.any():
            buf = self.ring.buf[wrapped]
            present = ~np.isnan(buf)
            ref = np.nansum(buf, axis=1) / np.maximum(present.sum(axis=1), 1)
            d = np.where(present, buf - ref[:, None], 0.0)
            self.ref[wrapped], self.s1[wrapped], self.s2[wrapped] = ref, d.sum(1), (d * d).sum(1)

    @property
    def full(self) -> np.ndarray:
        return self.valid == self.size

    def mean(self) -> np.ndarray:
        return np.where(self.full, self.ref + self.s1 / self.size, np.nan)

    def sum(self) -> np.ndarray:
        return np.where(self.full, self.ref * self.size + self.s1, np.nan)

    def var(self, ddof: int) -> np.ndarray:
        ss = np.maximum(self.s2 - self.s1 * self.s1 / self.size, 0.0)
        return np.where(self.full, ss / (self.size - ddof), np.nan)


class CoMoments:
    """Rolling sums of a pair (x, y) over ``size`` bars where both are present."""

    def __init__(self, n: int, size: int) -> None:
        self.x, self.y = Ring(n, size), Ring(n, size)
        self.stagger = np.arange(n) % size
        self.size = size
        self.sx, self.sy, self.sxx, self.syy, self.sxy = (np.zeros(n) for _ in range(5))
        self.valid = np.zeros(n, dtype=np.int64)

    def push(self, mask: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        both = np.where(np.isnan(x) | np.isnan(y), np.nan, 1.0)
        x, y = x * both, y * both
        ox, oy = self.x.push(mask, x), self.y.push(mask, y)
        nx, ny = x[mask], y[mask]
        ok_new, ok_old = ~np.isnan(nx), ~np.isnan(ox)
        nx, ny = np.where(ok_new, nx, 0.0), np.where(ok_new, ny, 0.0)
        ox, oy = np.where(ok_old, ox, 0.0), np.where(ok_old, oy, 0.0)
        self.sx[mask] += nx - ox
        self.sy[mask] += ny - oy
        self.sxx[mask] += nx * nx - ox * ox
        self.syy[mask] += ny * ny - oy * oy
        self.sxy[mask] += nx * ny - ox * oy
        self.valid[mask] += ok_new.astype(np.int64) - ok_old.astype(np.int64)
        wrapped = mask & (self.x.pos == self.stagger)
        if wrapped.any():
            bx = np.nan_to_num(self.x.buf[wrapped])
            by = np.nan_to_num(self.y.buf[wrapped])
            self.sx[wrapped], self.sy[wrapped] = bx.sum(1), by.sum(1)
            self.sxx[wrapped], self.syy[wrapped] = (bx * bx).sum(1), (by * by).sum(1)
            self.sxy[wrapped] = (bx * by).sum(1)

    @property
    def full(self) -> np.ndarray:
        return self.valid == self.size

    def stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample covariance, var(x), var(y); NaN until the window is full."""
        n = self.size
        cov = (self.sxy - self.sx * self.sy / n) / (n - 1)
        vx = np.maximum(self.sxx - self.sx * self.sx / n, 0.0) / (n - 1)
        vy = np.maximum(self.syy - self.sy * self.sy / n, 0.0) / (n - 1)
        nan = ~self.full
        return (np.where(nan, np.nan, cov), np.where(nan, np.nan, vx), np.where(nan, np.nan, vy))


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (as SQL's nullif(den, 0))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))
