"""The windowed feature kinds: each value is a function of the last ``window`` bars.

Rolling sums (:class:`Moments`) give means and variances in O(1) per bar; extremes are taken over
ring buffers. Formulas follow the SQL in transforms/dbt/macros/features.sql. Each kind is one
kernel over the symbols of a cross-section, writing its columns (``cols``) of ``out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from transforms.online.rolling import (
    Bar,
    Extreme,
    Moments,
    Ring,
    Updater,
    extremes_push,
    kernel,
    moments_push,
    moments_stats,
    ring_push,
    safe_div,
)
from transforms.spec import Feature


@kernel
def _copy_kernel(mask: np.ndarray, x: np.ndarray, out: np.ndarray, col: int) -> None:
    for i in range(mask.shape[0]):
        if mask[i]:
            out[col, i] = x[i]


@kernel
def _moments_kernel(
    mask: np.ndarray,
    x: np.ndarray,
    moments: tuple,
    kind: int,
    k: float,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    """sma (kind 0), bbands (1), volume_z (2) and hist_vol (3, ``k`` the annualization)."""
    moments_push(mask, x, *moments)
    buf, _, _, ref, s1, s2, valid, _ = moments
    size, ddof = buf.shape[1], 0 if kind == 1 else 1
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        mean, var = moments_stats(size, ref[i], s1[i], s2[i], valid[i], ddof)
        if kind == 0:
            out[cols[0], i] = mean
        elif kind == 1:
            sd = np.sqrt(var)
            upper, lower = mean + k * sd, mean - k * sd
            out[cols[0], i], out[cols[1], i], out[cols[2], i] = upper, mean, lower
            out[cols[3], i] = safe_div(x[i] - lower, upper - lower)
            out[cols[4], i] = safe_div(upper - lower, mean)
        elif kind == 2:
            out[cols[0], i] = safe_div(x[i] - mean, np.sqrt(var))
        else:
            out[cols[0], i] = np.sqrt(var) * k


@kernel
def _extremes_kernel(
    mask: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    highs: tuple,
    lows: tuple,
    willr: bool,
    d: tuple,
    v: np.ndarray,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    """Stochastic %K/%D (``d`` the %D Moments, ``v`` scratch for %K) or Williams %R over the
    window's range."""
    extremes_push(mask, h, *highs)
    extremes_push(mask, lo, *lows)
    hh, ll = highs[-1], lows[-1]
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        rng = hh[i] - ll[i]
        if willr:
            w = -100 * (hh[i] - c[i]) / rng if rng > 0 else (0.0 if rng == 0 else np.nan)
            out[cols[0], i] = w
        else:
            v[i] = 100 * (c[i] - ll[i]) / rng if rng > 0 else (0.0 if rng == 0 else np.nan)
            out[cols[0], i] = v[i]
    if willr:
        return
    moments_push(mask, v, *d)
    buf, _, _, ref, s1, s2, valid, _ = d
    for i in range(mask.shape[0]):
        if mask[i]:
            out[cols[1], i] = moments_stats(buf.shape[1], ref[i], s1[i], s2[i], valid[i], 1)[0]


@kernel
def _roc_kernel(
    mask: np.ndarray, c: np.ndarray, buf: np.ndarray, pos: np.ndarray, out: np.ndarray, col: int
) -> None:
    for i in range(mask.shape[0]):
        if mask[i]:
            base = ring_push(buf, pos, i, c[i])  # the value ``window`` bars back
            out[col, i] = 0.0 if base == 0 else (c[i] / base - 1) * 100


@kernel
def _range_kernel(
    mask: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    highs: tuple,
    lows: tuple,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    extremes_push(mask, h, *highs)
    extremes_push(mask, lo, *lows)
    hh, ll = highs[-1], lows[-1]
    for i in range(mask.shape[0]):
        if mask[i]:
            out[cols[0], i], out[cols[1], i] = hh[i], ll[i]
            out[cols[2], i], out[cols[3], i] = c[i] / hh[i] - 1, c[i] / ll[i] - 1


@kernel
def _pivots_kernel(
    mask: np.ndarray,
    ph: np.ndarray,
    pl: np.ndarray,
    pc: np.ndarray,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    for i in range(mask.shape[0]):
        if mask[i]:
            p = (ph[i] + pl[i] + pc[i]) / 3
            out[cols[0], i], out[cols[1], i], out[cols[2], i] = p, 2 * p - pl[i], 2 * p - ph[i]
            out[cols[3], i], out[cols[4], i] = p + (ph[i] - pl[i]), p - (ph[i] - pl[i])


def _moments(kind: int, field: str, scale: float = 0.0) -> Callable[..., Updater]:
    def build(f: Feature, n: int, cols: np.ndarray) -> Updater:
        state = Moments(n, f["window"]).state()
        k = float(f["k"]) if kind == 1 else scale

        def step(m: np.ndarray, b: Bar, out: np.ndarray) -> None:
            _moments_kernel(m, b[field], state, kind, k, out, cols)

        return step

    return build


def _log_return(f: Feature, n: int, cols: np.ndarray) -> Updater:
    return lambda m, b, out: _copy_kernel(m, b["ret"], out, cols[0])


def _extremes(f: Feature, n: int, cols: np.ndarray) -> Updater:
    """Stochastic %K/%D and Williams %R: the close within the window's high-low range."""
    willr = f.kind == "willr"
    w = f["window"] if willr else f["k_window"]
    highs, lows = Extreme(n, w, True).state(), Extreme(n, w, False).state()
    d, v = Moments(n, 1 if willr else f["d_window"]).state(), np.full(n, np.nan)

    def step(m: np.ndarray, b: Bar, out: np.ndarray) -> None:
        _extremes_kernel(m, b["high"], b["low"], b["close"], highs, lows, willr, d, v, out, cols)

    return step


def _roc(f: Feature, n: int, cols: np.ndarray) -> Updater:
    closes = Ring(n, f["window"])
    return lambda m, b, out: _roc_kernel(m, b["close"], closes.buf, closes.pos, out, cols[0])


def _range(f: Feature, n: int, cols: np.ndarray) -> Updater:
    w = f["window"]
    highs, lows = Extreme(n, w, True).state(), Extreme(n, w, False).state()

    def step(m: np.ndarray, b: Bar, out: np.ndarray) -> None:
        _range_kernel(m, b["high"], b["low"], b["close"], highs, lows, out, cols)

    return step


def _pivots(f: Feature, n: int, cols: np.ndarray) -> Updater:
    return lambda m, b, out: _pivots_kernel(
        m, b["prev_high"], b["prev_low"], b["prev_close"], out, cols
    )


_BUILDERS: dict[str, Callable[[Feature, int, np.ndarray], Updater]] = {
    "log_return": _log_return,
    "sma": _moments(0, "close"),
    "bbands": _moments(1, "close"),
    "stoch": _extremes,
    "willr": _extremes,
    "roc": _roc,
    "volume_z": _moments(2, "volume"),
    "range": _range,
    "pivots": _pivots,
}


def windowed_updater(f: Feature, n: int, cols: np.ndarray, bars_per_year: float) -> Updater:
    """The updater of one windowed spec entry over ``n`` symbols, writing columns ``cols``."""
    if f.kind == "hist_vol":
        return _moments(3, "ret", math.sqrt(bars_per_year))(f, n, cols)
    if f.kind not in _BUILDERS:
        raise ValueError(f"online engine: no updater for windowed kind {f.kind!r} ({f.name})")
    return _BUILDERS[f.kind](f, n, cols)
