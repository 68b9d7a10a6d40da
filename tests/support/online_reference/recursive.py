"""The recursive feature kinds: each value is a function of the previous value and the new bar.

Exactly the arithmetic of transforms/dbt/macros/aggregates.sql (TA-Lib conventions for EMA, MACD,
RSI, ATR and SAR; running sums for OBV, VPT and A/D).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.support.online_reference.rolling import Bar, Updater
from transforms.spec import Feature


class Ema:
    """TA-Lib EMA: SMA seed over ``window`` inputs after ``skip``; NaN inputs are not counted."""

    def __init__(self, n: int, window: int, skip: int = 0) -> None:
        self.window, self.skip, self.k = window, skip, 2.0 / (window + 1)
        self.count = np.zeros(n)
        self.sum = np.zeros(n)
        self.value = np.full(n, np.nan)

    def step(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        m = mask & ~np.isnan(x)
        count = self.count + m
        seeding = m & (count > self.skip) & (count - self.skip <= self.window)
        self.sum = np.where(seeding, self.sum + x, self.sum)
        seeded = m & (count - self.skip == self.window)
        running = m & (count - self.skip > self.window)
        value = np.where(seeded, self.sum / self.window, self.value)
        self.value = np.where(running, (x - self.value) * self.k + self.value, value)
        self.count = count
        return self.value


class Rsi:
    """TA-Lib RSI: Wilder's smoothing of gains and losses, seeded with their window mean."""

    def __init__(self, n: int, window: int) -> None:
        self.n = window
        self.count = np.zeros(n)
        self.prev = np.full(n, np.nan)
        self.gain = np.zeros(n)
        self.loss = np.zeros(n)
        self.value = np.full(n, np.nan)

    def step(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = self.n
        d = x - self.prev
        count = self.count + mask
        move = mask & (count > 1)
        up = np.where(d < 0, 0.0, d)
        down = np.where(d < 0, -d, 0.0)
        early = move & (count <= n + 1)
        late = move & (count > n + 1)
        gain = np.where(late, self.gain * (n - 1), self.gain)
        loss = np.where(late, self.loss * (n - 1), self.loss)
        gain = np.where(move & (d >= 0), gain + up, gain)
        loss = np.where(move & (d < 0), loss + down, loss)
        divide = late | (early & (count == n + 1))
        gain = np.where(divide, gain / n, gain)
        loss = np.where(divide, loss / n, loss)
        total = gain + loss
        with np.errstate(divide="ignore", invalid="ignore"):
            rsi = np.where(np.abs(total) < 1e-14, 0.0, 100.0 * (gain / total))
        self.value = np.where(divide, rsi, self.value)
        self.gain, self.loss, self.count = gain, loss, count
        self.prev = np.where(mask, x, self.prev)
        return self.value


class Atr:
    """TA-Lib ATR: Wilder's smoothing of the true range, seeded with its mean over ``window``."""

    def __init__(self, n: int, window: int) -> None:
        self.n = window
        self.count = np.zeros(n)
        self.prev = np.full(n, np.nan)
        self.sum = np.zeros(n)
        self.value = np.full(n, np.nan)

    def step(self, mask: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
        n = self.n
        p = self.prev
        tr = np.maximum(np.maximum(h - lo, np.abs(p - h)), np.abs(lo - p))
        count = self.count + mask
        move = mask & (count > 1)
        seeding = move & (count <= n + 1)
        self.sum = np.where(seeding, self.sum + tr, self.sum)
        value = np.where(move & (count == n + 1), self.sum / n, self.value)
        running = move & (count > n + 1)
        self.value = np.where(running, ((self.value * (n - 1)) + tr) / n, value)
        self.count = count
        self.prev = np.where(mask, c, self.prev)
        return self.value


class Psar:
    """TA-Lib SAR, branch by branch with np.where; the value is the SAR in force for the bar."""

    def __init__(self, n: int, acceleration: float, maximum: float) -> None:
        self.acc, self.max = min(acceleration, maximum), maximum
        self.count = np.zeros(n)
        self.long = np.zeros(n, dtype=bool)
        self.sar, self.ep, self.af = (np.full(n, np.nan) for _ in range(3))
        self.ph, self.pl = np.full(n, np.nan), np.full(n, np.nan)
        self.value = np.full(n, np.nan)

    def step(self, mask: np.ndarray, h: np.ndarray, lo: np.ndarray) -> np.ndarray:
        acc, amax = self.acc, self.max
        first = mask & (self.count == 1)
        # bar 1: direction from minus-DM, initial SAR and extreme point from bar 0
        dm_minus = self.pl - lo
        short = (dm_minus > 0) & ((h - self.ph) < dm_minus)
        long_ = np.where(first, ~short, self.long)
        sar = np.where(first, np.where(short, self.ph, self.pl), self.sar)
        ep = np.where(first, np.where(short, lo, h), self.ep)
        af = np.where(first, acc, self.af)
        ph = np.where(first, h, self.ph)
        pl = np.where(first, lo, self.pl)

        # long branch
        flip_l = lo <= sar
        s_fl = np.maximum(np.maximum(ep, ph), h)
        out_fl = s_fl
        n_fl = s_fl + acc * (lo - s_fl)
        n_fl = np.maximum(np.maximum(n_fl, ph), h)
        new_ep_l = h > ep
        ep_l = np.where(new_ep_l, h, ep)
        af_l = np.where(new_ep_l, np.minimum(af + acc, amax), af)
        n_l = sar + af_l * (ep_l - sar)
        n_l = np.minimum(np.minimum(n_l, pl), lo)
        # short branch
        flip_s = h >= sar
        s_fs = np.minimum(np.minimum(ep, pl), lo)
        out_fs = s_fs
        n_fs = s_fs + acc * (h - s_fs)
        n_fs = np.minimum(np.minimum(n_fs, pl), lo)
        new_ep_s = lo < ep
        ep_s = np.where(new_ep_s, lo, ep)
        af_s = np.where(new_ep_s, np.minimum(af + acc, amax), af)
        n_s = sar + af_s * (ep_s - sar)
        n_s = np.maximum(np.maximum(n_s, ph), h)

        out = np.where(long_, np.where(flip_l, out_fl, sar), np.where(flip_s, out_fs, sar))
        new_sar = np.where(long_, np.where(flip_l, n_fl, n_l), np.where(flip_s, n_fs, n_s))
        new_ep = np.where(long_, np.where(flip_l, lo, ep_l), np.where(flip_s, h, ep_s))
        new_af = np.where(long_, np.where(flip_l, acc, af_l), np.where(flip_s, acc, af_s))
        new_long = np.where(long_, ~flip_l, flip_s)

        active = mask & (self.count >= 1)
        self.value = np.where(active, out, self.value)
        self.sar = np.where(active, new_sar, self.sar)
        self.ep = np.where(active, new_ep, self.ep)
        self.af = np.where(active, new_af, self.af)
        self.long = np.where(active, new_long, self.long)
        self.ph = np.where(mask, h, self.ph)
        self.pl = np.where(mask, lo, self.pl)
        self.count = self.count + mask
        return self.value


def _cumulative(n: int, term: Callable[[Bar, np.ndarray], np.ndarray]) -> Updater:
    total = np.full(n, np.nan)

    def step(mask: np.ndarray, bar: Bar) -> dict[str, np.ndarray]:
        first = np.isnan(bar["prev_close"])
        t = term(bar, first)
        total[mask] = np.where(np.isnan(total[mask]), t[mask], total[mask] + t[mask])
        return {"value": total}

    return step


def recursive_updater(f: Feature, n: int) -> Updater:
    o = f.outputs
    if f.kind == "ema":
        ema = Ema(n, f["window"])
        return lambda m, b: {o[0]: ema.step(m, b["close"])}
    if f.kind == "macd":
        fast = Ema(n, f["fast"], f["slow"] - f["fast"])
        slow = Ema(n, f["slow"])
        signal = Ema(n, f["signal"])

        def macd(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            line = fast.step(m, b["close"]) - slow.step(m, b["close"])
            sig = signal.step(m, line).copy()
            return {o[0]: line, o[1]: sig, o[2]: line - sig}

        return macd
    if f.kind == "rsi":
        rsi = Rsi(n, f["window"])
        return lambda m, b: {o[0]: rsi.step(m, b["close"])}
    if f.kind == "atr":
        atr = Atr(n, f["window"])
        return lambda m, b: {o[0]: atr.step(m, b["high"], b["low"], b["close"])}
    if f.kind == "psar":
        psar = Psar(n, f["acceleration"], f["maximum"])
        return lambda m, b: {o[0]: psar.step(m, b["high"], b["low"])}
    terms: dict[str, Callable[[Bar, np.ndarray], np.ndarray]] = {
        "obv": lambda b, first: np.where(
            first, b["volume"], np.sign(b["close"] - b["prev_close"]) * b["volume"]
        ),
        "vpt": lambda b, first: np.where(
            np.isnan(b["volume"]),
            np.nan,
            np.where(first, 0.0, b["volume"] * (b["close"] - b["prev_close"]) / b["prev_close"]),
        ),
        "ad": lambda b, first: np.where(
            np.isnan(b["high"]) | np.isnan(b["low"]) | np.isnan(b["volume"]),
            np.nan,
            np.where(
                b["high"] > b["low"],
                ((b["close"] - b["low"]) - (b["high"] - b["close"]))
                / np.where(b["high"] > b["low"], b["high"] - b["low"], 1.0)
                * b["volume"],
                0.0,
            ),
        ),
    }
    if f.kind in terms:
        step = _cumulative(n, terms[f.kind])
        return lambda m, b: {o[0]: step(m, b)["value"]}
    raise ValueError(f"online engine: no updater for recursive kind {f.kind!r} ({f.name})")
