"""The windowed feature kinds: each value is a function of the last ``window`` bars.

Rolling sums (:class:`Moments`) give means and variances in O(1) per bar; extremes are taken over
ring buffers. Formulas follow the SQL in transforms/dbt/macros/features.sql.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tests.support.online_reference.rolling import Bar, Moments, Ring, Updater, safe_div
from transforms.spec import Feature


def _log_return(f: Feature, n: int) -> Updater:
    o = f.outputs
    return lambda m, b: {o[0]: b["ret"]}


def _sma(f: Feature, n: int) -> Updater:
    o = f.outputs
    mom = Moments(n, f["window"])

    def sma(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        mom.push(m, b["close"])
        return {o[0]: mom.mean()}

    return sma


def _bbands(f: Feature, n: int) -> Updater:
    o = f.outputs
    mom, k = Moments(n, f["window"]), f["k"]

    def bbands(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        mom.push(m, b["close"])
        mid, sd = mom.mean(), np.sqrt(mom.var(0))
        upper, lower = mid + k * sd, mid - k * sd
        pctb = safe_div(b["close"] - lower, upper - lower)
        return {
            o[0]: upper,
            o[1]: mid,
            o[2]: lower,
            o[3]: pctb,
            o[4]: safe_div(upper - lower, mid),
        }

    return bbands


def _extremes(f: Feature, n: int) -> Updater:
    """Stochastic %K/%D and Williams %R: the close within the window's high-low range."""
    o = f.outputs
    kind = f.kind
    w = f["k_window"] if kind == "stoch" else f["window"]
    highs, lows = Ring(n, w), Ring(n, w)
    d = Moments(n, f["d_window"]) if kind == "stoch" else None

    def extremes(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        highs.push(m, b["high"])
        lows.push(m, b["low"])
        hh, ll = highs.buf.max(axis=1), lows.buf.min(axis=1)
        rng = hh - ll
        c = b["close"]
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "willr":
                v = np.where(rng > 0, -100 * (hh - c) / rng, np.where(rng == 0, 0.0, np.nan))
                return {o[0]: v}
            v = np.where(rng > 0, 100 * (c - ll) / rng, np.where(rng == 0, 0.0, np.nan))
        d.push(m, v)
        return {o[0]: v, o[1]: d.mean()}

    return extremes


def _roc(f: Feature, n: int) -> Updater:
    o = f.outputs
    closes = Ring(n, f["window"])

    def roc(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        base = closes.oldest()
        closes.push(m, b["close"])
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(base == 0, 0.0, (b["close"] / base - 1) * 100)
        return {o[0]: v}

    return roc


def _volume_z(f: Feature, n: int) -> Updater:
    o = f.outputs
    mom = Moments(n, f["window"])

    def volume_z(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        mom.push(m, b["volume"])
        return {o[0]: safe_div(b["volume"] - mom.mean(), np.sqrt(mom.var(1)))}

    return volume_z


def _hist_vol(f: Feature, n: int, bars_per_year: float) -> Updater:
    o = f.outputs
    mom = Moments(n, f["window"])
    scale = math.sqrt(bars_per_year)

    def hist_vol(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        mom.push(m, b["ret"])
        return {o[0]: np.sqrt(mom.var(1)) * scale}

    return hist_vol


def _range(f: Feature, n: int) -> Updater:
    o = f.outputs
    highs, lows = Ring(n, f["window"]), Ring(n, f["window"])

    def range_(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        highs.push(m, b["high"])
        lows.push(m, b["low"])
        hh, ll = highs.buf.max(axis=1), lows.buf.min(axis=1)
        return {o[0]: hh, o[1]: ll, o[2]: b["close"] / hh - 1, o[3]: b["close"] / ll - 1}

    return range_


def _pivots(f: Feature, n: int) -> Updater:
    o = f.outputs

    def pivots(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
        ph, pl, pc = b["prev_high"], b["prev_low"], b["prev_close"]
        p = (ph + pl + pc) / 3
        return {
            o[0]: p,
            o[1]: 2 * p - pl,
            o[2]: 2 * p - ph,
            o[3]: p + (ph - pl),
            o[4]: p - (ph - pl),
        }

    return pivots


_BUILDERS: dict[str, Callable[[Feature, int], Updater]] = {
    "log_return": _log_return,
    "sma": _sma,
    "bbands": _bbands,
    "stoch": _extremes,
    "willr": _extremes,
    "roc": _roc,
    "volume_z": _volume_z,
    "range": _range,
    "pivots": _pivots,
}


def windowed_updater(f: Feature, n: int, bars_per_year: float) -> Updater:
    """The updater of one windowed spec entry over ``n`` symbols."""
    if f.kind == "hist_vol":
        return _hist_vol(f, n, bars_per_year)
    if f.kind not in _BUILDERS:
        raise ValueError(f"online engine: no updater for windowed kind {f.kind!r} ({f.name})")
    return _BUILDERS[f.kind](f, n)
