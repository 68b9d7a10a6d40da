"""Fixed-size per-symbol state the feature families share, and the numba helpers that advance it.

Every structure holds one row per symbol and is advanced for the symbols a cross-section masks in,
so its size never grows with history. The kernels loop over symbols in compiled code, one core
(``njit`` without ``parallel``, no BLAS); each keeps the operation order of the numpy version it
replaced (tests/support/online_reference), so the values are the same bit for bit: sums over a
window are :func:`pairwise_sum`, numpy's own summation order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

Bar = dict[str, np.ndarray]  # open/high/low/close/volume, prev_* and ret for one cross-section
# one per spec entry: step(mask, bar, out) writes every column of the entry into out
Updater = Callable[[np.ndarray, Bar, np.ndarray], None]


def _njit(**options: Any) -> Callable[[Callable], Callable]:
    """``nb.njit`` whose machine code is cached on disk where numba can write (beside the
    module, ~/.cache/numba or NUMBA_CACHE_DIR); where it cannot (a read-only install, as under
    systemd's ProtectSystem) the kernels compile in each process instead, about 10 s."""

    def decorate(fn: Callable) -> Callable:
        try:
            return nb.njit(cache=True, **options)(fn)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return nb.njit(**options)(fn)

    return decorate


# error_model="numpy": x / 0 is inf or NaN as in numpy, not ZeroDivisionError; no fastmath, so
# LLVM neither reorders nor fuses the arithmetic
kernel = _njit(error_model="numpy", nogil=True)

_FLOAT_MAX = np.finfo(np.float64).max


@kernel
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's sum of a block of at most 128 values: eight interleaved partial sums."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@kernel
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's add.reduce of a[lo:lo + n] (numpy/_core/src/umath/loops_utils.h.src), same order:
    halves (cut at a multiple of 8) summed apart down to blocks of 128. The recursion runs on an
    explicit stack: numba's cache reloads a self-recursive function wrongly (a crash)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    los, ns = np.empty(64, np.int64), np.empty(64, np.int64)
    right, left = np.zeros(64, np.bool_), np.empty(64)
    los[0], ns[0], sp = lo, n, 1
    while True:
        top = sp - 1
        if ns[top] > 128:  # an internal node just pushed: its left half first
            half = ns[top] // 2
            los[sp], ns[sp], right[sp] = los[top], half - half % 8, False
            sp += 1
            continue
        v = _block_sum(a, los[top], ns[top])
        sp -= 1
        while sp:  # hand v to the parent: a left half starts the right, a right completes it
            p = sp - 1
            half = ns[p] // 2
            half -= half % 8
            if not right[p]:
                left[p], right[p] = v, True
                los[sp], ns[sp], right[sp] = los[p] + half, ns[p] - half, False
                sp += 1
                break
            v = left[p] + v
            sp -= 1
        if sp == 0:
            return v


@kernel
def nmax(a: float, b: float) -> float:
    """np.maximum of two scalars: NaN if either is."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return a if a >= b else b


@kernel
def nmin(a: float, b: float) -> float:
    """np.minimum of two scalars: NaN if either is."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return a if a <= b else b


@kernel
def safe_div(num: float, den: float) -> float:
    """num / den, NaN where den is 0 (as SQL's nullif(den, 0))."""
    return np.nan if den == 0 else num / den


@kernel
def nan_to_num(x: float) -> float:
    """np.nan_to_num of a scalar."""
    if np.isnan(x):
        return 0.0
    if np.isinf(x):
        return _FLOAT_MAX if x > 0 else -_FLOAT_MAX
    return x


@kernel
def ring_push(buf: np.ndarray, pos: np.ndarray, i: int, x: float) -> float:
    """Write ``x`` into row ``i``'s ring; returns the value it overwrote."""
    p = pos[i]
    old = buf[i, p]
    buf[i, p] = x
    pos[i] = p + 1 if p + 1 < buf.shape[1] else 0  # no integer division: it is most of a push
    return old


# max and min are exact in any order, so a scan may be vectorized (NaN excluded by the caller)
_scan = _njit(error_model="numpy", nogil=True, fastmath={"nnan", "reassoc", "nsz"})


@_scan
def _row_max(buf: np.ndarray, i: int) -> float:
    m = buf[i, 0]
    for j in range(1, buf.shape[1]):
        m = max(m, buf[i, j])
    return m


@_scan
def _row_min(buf: np.ndarray, i: int) -> float:
    m = buf[i, 0]
    for j in range(1, buf.shape[1]):
        m = min(m, buf[i, j])
    return m


@kernel
def extremes_push(
    mask: np.ndarray,
    x: np.ndarray,
    buf: np.ndarray,
    pos: np.ndarray,
    nans: np.ndarray,
    is_max: bool,
    res: np.ndarray,
) -> None:
    """Push ``x`` into the masked rows' windows; ``res`` gets each window's max (``is_max``) or
    min, NaN if any value is (np.max / np.min of the row): ``nans`` counts the window's NaN, so
    a scan sees none."""
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        old = ring_push(buf, pos, i, x[i])
        nans[i] += (1 if np.isnan(x[i]) else 0) - (1 if np.isnan(old) else 0)
        if nans[i]:
            res[i] = np.nan
        else:
            res[i] = _row_max(buf, i) if is_max else _row_min(buf, i)


class Ring:
    """The last ``size`` values of one series per symbol (NaN until written)."""

    def __init__(self, n: int, size: int) -> None:
        self.buf = np.full((n, size), np.nan)
        self.pos = np.zeros(n, dtype=np.int64)


class Extreme:
    """A :class:`Ring` whose max (``is_max``) or min is wanted, with its count of NaN and where
    the extremes go: the arguments of :func:`extremes_push` after the input."""

    def __init__(self, n: int, size: int, is_max: bool) -> None:
        self.ring = Ring(n, size)
        self.nans = np.full(n, size, dtype=np.int64)
        self.is_max = is_max
        self.res = np.full(n, np.nan)

    def state(self) -> tuple:
        return self.ring.buf, self.ring.pos, self.nans, self.is_max, self.res


class Moments:
    """Rolling sums of x and x^2 over ``size`` bars, O(1) per bar.

    Sums are kept around a per-symbol reference, re-centred from the ring once per ``size`` bars
    (at a position staggered by symbol, so the cost is spread over bars), which bounds both drift
    and cancellation far below 1e-9. The arrays are what :func:`moments_push` advances.
    """

    def __init__(self, n: int, size: int) -> None:
        self.ring = Ring(n, size)
        self.stagger = np.arange(n, dtype=np.int64) % size
        self.ref = np.zeros(n)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        self.valid = np.zeros(n, dtype=np.int64)
        self.tmp = np.empty(size)  # scratch for a re-centring

    def state(self) -> tuple[np.ndarray, ...]:
        """The arguments of :func:`moments_push` and :func:`moments_stats`, in order."""
        r = self.ring
        return r.buf, r.pos, self.stagger, self.ref, self.s1, self.s2, self.valid, self.tmp


@kernel
def moments_push(
    mask: np.ndarray,
    x: np.ndarray,
    buf: np.ndarray,
    pos: np.ndarray,
    stagger: np.ndarray,
    ref: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    valid: np.ndarray,
    tmp: np.ndarray,
) -> None:
    """Add ``x`` to the masked rows' windows (dropping the values overwritten); a row whose
    ring wraps at its stagger is re-centred: its sums recomputed around its window's mean.

    One call loops over all symbols: a call per symbol with arrays costs reference counting,
    more than the push itself."""
    size = buf.shape[1]
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        old = ring_push(buf, pos, i, x[i])
        r = ref[i]
        d_new = 0.0 if np.isnan(x[i]) else x[i] - r
        d_old = 0.0 if np.isnan(old) else old - r
        s1[i] += d_new - d_old
        s2[i] += d_new * d_new - d_old * d_old
        valid[i] += (0 if np.isnan(x[i]) else 1) - (0 if np.isnan(old) else 1)
        if pos[i] != stagger[i]:
            continue
        present = 0
        for j in range(size):
            v = buf[i, j]
            tmp[j] = 0.0 if np.isnan(v) else v
            present += 0 if np.isnan(v) else 1
        r = pairwise_sum(tmp, 0, size) / max(present, 1)
        for j in range(size):
            v = buf[i, j]
            tmp[j] = 0.0 if np.isnan(v) else v - r
        ref[i] = r
        s1[i] = pairwise_sum(tmp, 0, size)
        for j in range(size):
            tmp[j] = tmp[j] * tmp[j]
        s2[i] = pairwise_sum(tmp, 0, size)


@kernel
def moments_stats(
    size: int, ref: float, s1: float, s2: float, valid: int, ddof: int
) -> tuple[float, float]:
    """A row's window mean and variance (``ddof``) from its scalars; NaN until it is full."""
    if valid != size:
        return np.nan, np.nan
    ss = s2 - s1 * s1 / size
    if ss < 0.0:
        ss = 0.0
    return ref + s1 / size, ss / (size - ddof)
