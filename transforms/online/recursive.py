"""The recursive feature kinds: each value is a function of the previous value and the new bar.

Exactly the arithmetic of transforms/dbt/macros/aggregates.sql (TA-Lib conventions for EMA, MACD,
RSI, ATR and SAR; running sums for OBV, VPT and A/D). Each kind is one kernel over the symbols of
a cross-section that advances its state arrays and writes its columns (``cols``) of ``out``.
"""

from __future__ import annotations

import numpy as np

from transforms.online.rolling import Updater, kernel, nmax, nmin
from transforms.spec import Feature


@kernel
def _ema(state: np.ndarray, i: int, x: float) -> float:
    """TA-Lib EMA of row ``i``; state columns: count, sum, value, window, skip, k.

    SMA seed over ``window`` inputs after ``skip``; NaN inputs are not counted."""
    if not np.isnan(x):
        window, skip = state[i, 3], state[i, 4]
        count = state[i, 0] + 1
        if count > skip and count - skip <= window:
            state[i, 1] = state[i, 1] + x
        if count - skip == window:
            state[i, 2] = state[i, 1] / window
        elif count - skip > window:
            state[i, 2] = (x - state[i, 2]) * state[i, 5] + state[i, 2]
        state[i, 0] = count
    return state[i, 2]


def _ema_state(n: int, window: int, skip: int = 0) -> np.ndarray:
    state = np.zeros((n, 6))
    state[:, 2] = np.nan
    state[:, 3], state[:, 4], state[:, 5] = window, skip, 2.0 / (window + 1)
    return state


@kernel
def _ema_kernel(
    mask: np.ndarray, c: np.ndarray, state: np.ndarray, out: np.ndarray, col: int
) -> None:
    for i in range(mask.shape[0]):
        if mask[i]:
            out[col, i] = _ema(state, i, c[i])


@kernel
def _macd_kernel(
    mask: np.ndarray,
    c: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    signal: np.ndarray,
    out: np.ndarray,
    cols: np.ndarray,
) -> None:
    for i in range(mask.shape[0]):
        if mask[i]:
            line = _ema(fast, i, c[i]) - _ema(slow, i, c[i])
            sig = _ema(signal, i, line)
            out[cols[0], i], out[cols[1], i], out[cols[2], i] = line, sig, line - sig


@kernel
def _rsi_kernel(
    mask: np.ndarray,
    x: np.ndarray,
    n: int,
    count: np.ndarray,
    prev: np.ndarray,
    gain: np.ndarray,
    loss: np.ndarray,
    value: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """TA-Lib RSI: Wilder's smoothing of gains and losses, seeded with their window mean."""
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        d = x[i] - prev[i]
        count[i] += 1
        if count[i] > 1:
            g, lo = gain[i], loss[i]
            late = count[i] > n + 1
            if late:
                g, lo = g * (n - 1), lo * (n - 1)
            if d >= 0:
                g = g + (0.0 if d < 0 else d)
            if d < 0:
                lo = lo + -d
            if late or count[i] == n + 1:
                g, lo = g / n, lo / n
                total = g + lo
                value[i] = 0.0 if np.abs(total) < 1e-14 else 100.0 * (g / total)
            gain[i], loss[i] = g, lo
        prev[i] = x[i]
        out[col, i] = value[i]


@kernel
def _atr_kernel(
    mask: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    n: int,
    count: np.ndarray,
    prev: np.ndarray,
    total: np.ndarray,
    value: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """TA-Lib ATR: Wilder's smoothing of the true range, seeded with its mean over ``window``."""
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        p = prev[i]
        tr = nmax(nmax(h[i] - lo[i], np.abs(p - h[i])), np.abs(lo[i] - p))
        count[i] += 1
        if count[i] > 1:
            if count[i] <= n + 1:
                total[i] = total[i] + tr
            if count[i] == n + 1:
                value[i] = total[i] / n
            elif count[i] > n + 1:
                value[i] = ((value[i] * (n - 1)) + tr) / n
        prev[i] = c[i]
        out[col, i] = value[i]


@kernel
def _psar_kernel(
    mask: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    acc: float,
    amax: float,
    count: np.ndarray,
    long_: np.ndarray,
    st: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """TA-Lib SAR; st columns: sar, ep, af, previous high, previous low, value (in force)."""
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        hi, low = h[i], lo[i]
        sar, ep, af, ph, pl = st[i, 0], st[i, 1], st[i, 2], st[i, 3], st[i, 4]
        is_long = long_[i]
        if count[i] == 1:  # bar 1: direction from minus-DM, SAR and extreme point from bar 0
            dm_minus = pl - low
            short = (dm_minus > 0) and ((hi - ph) < dm_minus)
            is_long = not short
            sar, ep = (ph, low) if short else (pl, hi)
            af, ph, pl = acc, hi, low
        if count[i] >= 1:
            if is_long and low <= sar:  # long, flips
                value = nmax(nmax(ep, ph), hi)
                sar = nmax(nmax(value + acc * (low - value), ph), hi)
                ep, af, is_long = low, acc, False
            elif is_long:
                if hi > ep:
                    ep, af = hi, nmin(af + acc, amax)
                value = sar
                sar = nmin(nmin(sar + af * (ep - sar), pl), low)
            elif hi >= sar:  # short, flips
                value = nmin(nmin(ep, pl), low)
                sar = nmin(nmin(value + acc * (hi - value), pl), low)
                ep, af, is_long = hi, acc, True
            else:
                if low < ep:
                    ep, af = low, nmin(af + acc, amax)
                value = sar
                sar = nmax(nmax(sar + af * (ep - sar), ph), hi)
            st[i, 0], st[i, 1], st[i, 2], st[i, 5] = sar, ep, af, value
            long_[i] = is_long
        st[i, 3], st[i, 4] = hi, low
        count[i] += 1
        out[col, i] = st[i, 5]


@kernel
def _cumulative_kernel(
    mask: np.ndarray,
    kind: int,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    pc: np.ndarray,
    total: np.ndarray,
    out: np.ndarray,
    col: int,
) -> None:
    """Running sums of OBV (kind 0), VPT (1) and A/D (2) terms; a term is NaN where the bar
    lacks an input (a close-only symbol: no volume, high or low), as in the SQL."""
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        first = np.isnan(pc[i])
        if kind == 0:
            t = v[i] if first else np.sign(c[i] - pc[i]) * v[i]
        elif kind == 1:
            t = np.nan if np.isnan(v[i]) else (0.0 if first else v[i] * (c[i] - pc[i]) / pc[i])
        elif np.isnan(h[i]) or np.isnan(lo[i]) or np.isnan(v[i]):
            t = np.nan
        else:
            t = ((c[i] - lo[i]) - (h[i] - c[i])) / (h[i] - lo[i]) * v[i] if h[i] > lo[i] else 0.0
        total[i] = t if np.isnan(total[i]) else total[i] + t
        out[col, i] = total[i]


_CUMULATIVE = {"obv": 0, "vpt": 1, "ad": 2}


def _wilder(n: int) -> tuple[np.ndarray, ...]:
    """count, previous input, running total (gain or sum), loss, value: RSI's and ATR's state."""
    return (np.zeros(n, dtype=np.int64), *(np.full(n, x) for x in (np.nan, 0.0, 0.0, np.nan)))


def recursive_updater(f: Feature, n: int, cols: np.ndarray) -> Updater:
    """The updater of one recursive spec entry over ``n`` symbols, writing columns ``cols``."""
    if f.kind == "ema":
        ema = _ema_state(n, f["window"])
        return lambda m, b, out: _ema_kernel(m, b["close"], ema, out, cols[0])
    if f.kind == "macd":
        fast = _ema_state(n, f["fast"], f["slow"] - f["fast"])
        slow, signal = _ema_state(n, f["slow"]), _ema_state(n, f["signal"])
        return lambda m, b, out: _macd_kernel(m, b["close"], fast, slow, signal, out, cols)
    if f.kind == "rsi":
        count, prev, gain, loss, value = _wilder(n)
        w = f["window"]
        return lambda m, b, out: _rsi_kernel(
            m, b["close"], w, count, prev, gain, loss, value, out, cols[0]
        )
    if f.kind == "atr":
        count, prev, total, _, value = _wilder(n)
        w = f["window"]
        return lambda m, b, out: _atr_kernel(
            m, b["high"], b["low"], b["close"], w, count, prev, total, value, out, cols[0]
        )
    if f.kind == "psar":
        acc, amax = min(f["acceleration"], f["maximum"]), float(f["maximum"])
        count, long_ = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
        st = np.full((n, 6), np.nan)
        return lambda m, b, out: _psar_kernel(
            m, b["high"], b["low"], acc, amax, count, long_, st, out, cols[0]
        )
    if f.kind in _CUMULATIVE:
        kind, total = _CUMULATIVE[f.kind], np.full(n, np.nan)
        fields = ("high", "low", "close", "volume", "prev_close")
        return lambda m, b, out: _cumulative_kernel(
            m, kind, *(b[k] for k in fields), total, out, cols[0]
        )
    raise ValueError(f"online engine: no updater for recursive kind {f.kind!r} ({f.name})")
