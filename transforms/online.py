"""The streaming twin of features.bar_features: every feature of the spec, updated bar by bar.

One ``update`` takes a cross-section (all symbols at one timestamp) and advances fixed-size state
per symbol - recursion values, ring buffers, running sums - vectorized across symbols with numpy.
Nothing is recomputed over history. Formulas and operation order follow docs/features.md and
the SQL in transforms/dbt, so replaying the history reproduces the table (see the parity test).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd

from transforms.garch import Fit, GarchFilter
from transforms.holidays import holiday_dates
from transforms.spec import CALENDAR_COLUMNS, Feature, FeatureSpec, default_spec

Bar = dict[str, np.ndarray]  # open/high/low/close/volume, prev_* and ret for one cross-section


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


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))


# ---------------------------------------------------------------------------------------------
# Recursive kinds (exactly the arithmetic of transforms/dbt/macros/aggregates.sql)


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


# ---------------------------------------------------------------------------------------------
# One updater per spec entry: step(mask, bar) -> {column: values}


Updater = Callable[[np.ndarray, Bar], dict[str, np.ndarray]]


def _cumulative(n: int, term: Callable[[Bar, np.ndarray], np.ndarray]) -> Updater:
    total = np.full(n, np.nan)

    def step(mask: np.ndarray, bar: Bar) -> dict[str, np.ndarray]:
        first = np.isnan(bar["prev_close"])
        t = term(bar, first)
        total[mask] = np.where(np.isnan(total[mask]), t[mask], total[mask] + t[mask])
        return {"value": total}

    return step


def _recursive(f: Feature, n: int) -> Updater:
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
            first, 0.0, b["volume"] * (b["close"] - b["prev_close"]) / b["prev_close"]
        ),
        "ad": lambda b, first: np.where(
            b["high"] > b["low"],
            ((b["close"] - b["low"]) - (b["high"] - b["close"]))
            / np.where(b["high"] > b["low"], b["high"] - b["low"], 1.0)
            * b["volume"],
            0.0,
        ),
    }
    if f.kind in terms:
        step = _cumulative(n, terms[f.kind])
        return lambda m, b: {o[0]: step(m, b)["value"]}
    raise ValueError(f"online engine: no updater for recursive kind {f.kind!r} ({f.name})")


def _windowed(f: Feature, n: int, bars_per_year: float) -> Updater:
    o = f.outputs
    kind = f.kind
    if kind == "log_return":
        return lambda m, b: {o[0]: b["ret"]}
    if kind == "sma":
        mom = Moments(n, f["window"])

        def sma(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            mom.push(m, b["close"])
            return {o[0]: mom.mean()}

        return sma
    if kind == "bbands":
        mom, k = Moments(n, f["window"]), f["k"]

        def bbands(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            mom.push(m, b["close"])
            mid, sd = mom.mean(), np.sqrt(mom.var(0))
            upper, lower = mid + k * sd, mid - k * sd
            pctb = _safe_div(b["close"] - lower, upper - lower)
            return {
                o[0]: upper,
                o[1]: mid,
                o[2]: lower,
                o[3]: pctb,
                o[4]: _safe_div(upper - lower, mid),
            }

        return bbands
    if kind in ("stoch", "willr"):
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
    if kind == "roc":
        closes = Ring(n, f["window"])

        def roc(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            base = closes.oldest()
            closes.push(m, b["close"])
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(base == 0, 0.0, (b["close"] / base - 1) * 100)
            return {o[0]: v}

        return roc
    if kind == "volume_z":
        mom = Moments(n, f["window"])

        def volume_z(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            mom.push(m, b["volume"])
            return {o[0]: _safe_div(b["volume"] - mom.mean(), np.sqrt(mom.var(1)))}

        return volume_z
    if kind == "hist_vol":
        mom = Moments(n, f["window"])
        scale = math.sqrt(bars_per_year)

        def hist_vol(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            mom.push(m, b["ret"])
            return {o[0]: np.sqrt(mom.var(1)) * scale}

        return hist_vol
    if kind == "range":
        highs, lows = Ring(n, f["window"]), Ring(n, f["window"])

        def range_(m: np.ndarray, b: Bar) -> dict[str, np.ndarray]:
            highs.push(m, b["high"])
            lows.push(m, b["low"])
            hh, ll = highs.buf.max(axis=1), lows.buf.min(axis=1)
            return {o[0]: hh, o[1]: ll, o[2]: b["close"] / hh - 1, o[3]: b["close"] / ll - 1}

        return range_
    if kind == "pivots":

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
    raise ValueError(f"online engine: no updater for windowed kind {kind!r} ({f.name})")


# ---------------------------------------------------------------------------------------------
# Calendar (the SQL model calendar_days, per date)


@cache
def _calendar_span() -> tuple[dt.date, dt.date]:
    days = holiday_dates()
    return dt.date(min(days).year, 1, 1), dt.date(max(days).year, 12, 31)


def _is_trading(day: dt.date) -> bool:
    return day.isoweekday() < 6 and day not in holiday_dates()


@cache
def calendar_row(day: dt.date, before: int, after: int) -> tuple[float, ...]:
    """The calendar columns of one date (NaN outside the holiday list's span)."""
    lo, hi = _calendar_span()
    if not lo <= day <= hi:
        return (math.nan,) * len(CALENDAR_COLUMNS)
    first = day.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    month_days = [first + dt.timedelta(days=i) for i in range((nxt - first).days)]
    elapsed = sum(_is_trading(d) for d in month_days if d <= day)
    to_end = sum(_is_trading(d) for d in month_days if d > day)
    dow = day.isoweekday()
    nxt_weekday = day + dt.timedelta(days={5: 3, 6: 2}.get(dow, 1))
    prev_weekday = day - dt.timedelta(days={1: 3, 7: 2}.get(dow, 1))
    holidays = holiday_dates()
    values = {
        "day_of_week": dow,
        "month": day.month,
        "is_month_end": int(to_end == 0),
        "is_quarter_end": int(to_end == 0 and day.month in (3, 6, 9, 12)),
        "days_to_month_end": to_end,
        "is_turn_of_month": int(to_end < before or 1 <= elapsed <= after),
        "is_pre_holiday": int(nxt_weekday in holidays),
        "is_post_holiday": int(prev_weekday in holidays),
    }
    return tuple(float(values[c]) for c in CALENDAR_COLUMNS)


# ---------------------------------------------------------------------------------------------


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
                self._updaters.append(_recursive(f, n))
            elif f.stage == "windowed":
                self._updaters.append(_windowed(f, n, self.spec.bars_per_year))
        self._cross = [f for f in self.spec.stage("cross_asset")]
        self._pairs = {
            f.name: CoMoments(n, f.window)
            for f in self._cross
            if f.kind in ("market", "rel_strength")
        }
        for f in self._cross:
            if f.kind not in ("market", "rel_strength", "sector_relative"):
                raise ValueError(f"online engine: no updater for cross-asset kind {f.kind!r}")
        sectors = sectors or {}
        labels = [sectors.get(s) for s in self.symbols]
        self._sector_ids = {s: np.array([x == s for x in labels]) for s in set(labels) if s}
        self._has_sector = np.array([x is not None for x in labels])
        bench = self.spec.benchmark
        self._benchmark = self.symbols.index(bench) if bench in self.symbols else None
        if bench and self._benchmark is None:
            raise ValueError(f"benchmark {bench!r} is not among the engine's symbols")
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
            self._cross_asset(mask, ret, out)
        self._calendar(ts, out)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.log(close / prev_close) * 100  # as transforms.garch.percent_log_returns
        out[:, self._col[self.spec.garch.name]] = self._garch.step(ts, mask, pct)
        for key, values in (("close", close), ("high", bar["high"]), ("low", bar["low"])):
            self._prev[key] = np.where(mask, values, self._prev[key])
        out[~mask] = np.nan
        return out

    def _cross_asset(self, mask: np.ndarray, ret: np.ndarray, out: np.ndarray) -> None:
        r = np.where(mask, ret, np.nan)
        if self._benchmark is not None:
            mkt = r[self._benchmark]
        else:
            present = ~np.isnan(r)
            mkt = r[present].mean() if present.any() else np.nan
        m = np.full(len(r), mkt)
        for f in self._cross:
            o = f.outputs
            if f.kind == "sector_relative":
                rel = np.full(len(r), np.nan)
                for members in self._sector_ids.values():
                    group = r[members]
                    ok = ~np.isnan(group)
                    if ok.any():
                        rel[members] = group - group[ok].mean()
                out[:, self._col[o[0]]] = rel
                continue
            pair = self._pairs[f.name]
            pair.push(mask, r, m)
            if f.kind == "market":
                cov, vr, vm = pair.stats()
                out[:, self._col[o[0]]] = _safe_div(cov, np.sqrt(vr * vm))
                out[:, self._col[o[1]]] = _safe_div(cov, vm)
            else:
                full = pair.full
                out[:, self._col[o[0]]] = np.where(full, pair.sx - pair.sy, np.nan)

    def _calendar(self, ts: dt.datetime | pd.Timestamp, out: np.ndarray) -> None:
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        cols = [self._col[c] for c in CALENDAR_COLUMNS]
        before, after = self.spec.turn_of_month_before, self.spec.turn_of_month_after
        for zone, members in self._zones.items():
            day = stamp.tz_convert(zone).date()
            out[np.ix_(members, cols)] = calendar_row(day, before, after)

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
        """An engine for ``symbols`` (sectors, time zones and GARCH fits from the warehouse),
        warmed up on every stored bar unless ``warm_up`` is false."""
        from transforms.garch import load_fits
        from warehouse.db import connect
        from warehouse.reads import read_bars

        with connect(url) as conn:
            rows = conn.execute(
                "select symbol, sector, exchange_tz from market.instruments order by symbol"
            ).fetchall()
        info = {s: (sector, tz) for s, sector, tz in rows if not symbols or s in symbols}
        names = sorted(info)
        engine = cls(
            names,
            spec,
            sectors={s: v[0] for s, v in info.items()},
            exchange_tz={s: v[1] for s, v in info.items()},
            garch_fits=load_fits(url, names),
        )
        if warm_up:
            bars = read_bars(url, names).to_pandas()
            if len(bars):
                engine.replay(bars)
        return engine
