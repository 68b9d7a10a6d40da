"""A seeded synthetic market for scale tests and benchmarks.

Returns follow a factor model (market + sector factors + idiosyncratic noise) whose volatility
switches between a calm and a stressed regime (a two-state Markov chain shared by all assets), with
Poisson jumps. Bars are daily (business days) or intraday within a 6.5-hour session.

Two options make it a test bench for the monitoring loop: ``momentum``, the autocorrelation of
each asset's bar returns (something a model can learn; 0 is a random walk), and ``break_at``, the
bar from which volatility is ``break_vol_multiplier`` times higher and the autocorrelation is
``break_momentum`` (the feature-return relation the model learnt stops holding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from warehouse.providers.base import Instrument, RawBars, select_symbols

SECTORS = (
    "Energy",
    "Materials",
    "Industrials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Health Care",
    "Financials",
    "Information Technology",
    "Communication Services",
    "Utilities",
)
SESSION_OPEN_UTC = pd.Timedelta(hours=14, minutes=30)
SESSION_LENGTH = pd.Timedelta(hours=6, minutes=30)


@dataclass(frozen=True)
class SyntheticMarket:
    n_symbols: int = 20
    n_bars: int = 1000
    freq: str = "1D"
    start: str = "2015-01-02"
    seed: int = 7
    annual_vol: float = 0.25
    stressed_vol_multiplier: float = 2.5
    regime_persistence: float = 0.99
    market_beta: float = 0.6
    sector_weight: float = 0.3
    jump_rate: float = 0.004
    jump_scale: float = 0.06
    momentum: float = 0.0
    break_at: int | None = None
    break_vol_multiplier: float = 3.0
    break_momentum: float = 0.0

    name = "synthetic"

    @property
    def symbols(self) -> list[str]:
        width = max(4, len(str(self.n_symbols)))
        return [f"SYN{i:0{width}d}" for i in range(self.n_symbols)]

    def timestamps(self) -> pd.DatetimeIndex:
        step = pd.Timedelta(self.freq)
        if step >= pd.Timedelta(days=1):
            return pd.bdate_range(self.start, periods=self.n_bars, tz="UTC")
        per_day = int(SESSION_LENGTH / step)
        days = pd.bdate_range(self.start, periods=-(-self.n_bars // per_day), tz="UTC")
        offsets = SESSION_OPEN_UTC + step * np.arange(per_day)
        stamps = (days.values[:, None] + np.asarray(offsets)[None, :]).ravel()[: self.n_bars]
        return pd.DatetimeIndex(stamps, tz="UTC")

    def _bars_per_year(self) -> float:
        step = pd.Timedelta(self.freq)
        if step >= pd.Timedelta(days=1):
            return 252.0
        return 252.0 * (SESSION_LENGTH / step)

    def _sectors(self) -> np.ndarray:
        return np.random.default_rng([self.seed, 1]).integers(0, len(SECTORS), size=self.n_symbols)

    def generate(self) -> pd.DataFrame:
        """All bars as a long frame (symbol, ts, open, high, low, close, volume)."""
        rng = np.random.default_rng(self.seed)
        n, t = self.n_symbols, self.n_bars
        sigma = self.annual_vol / np.sqrt(self._bars_per_year())

        stay = self.regime_persistence
        switches = rng.random(t) > stay
        regime = np.cumsum(switches) % 2  # 0 calm, 1 stressed
        vol = sigma * np.where(regime == 1, self.stressed_vol_multiplier, 1.0)[:, None]
        after = np.arange(t) >= (t if self.break_at is None else self.break_at)
        vol = vol * np.where(after, self.break_vol_multiplier, 1.0)[:, None]

        sector = self._sectors()
        market = rng.standard_normal((t, 1))
        sectors = rng.standard_normal((t, len(SECTORS)))[:, sector]
        idio_weight = np.sqrt(max(1e-6, 1 - self.market_beta**2 - self.sector_weight**2))
        shocks = (
            self.market_beta * market
            + self.sector_weight * sectors
            + idio_weight * rng.standard_normal((t, n))
        )
        jumps = (rng.random((t, n)) < self.jump_rate) * rng.normal(0, self.jump_scale, (t, n))
        log_ret = vol * shocks + jumps - 0.5 * vol**2
        phi = np.where(after, self.break_momentum, self.momentum)
        for i in np.flatnonzero(phi[1:]) + 1:  # AR(1) in each asset's returns
            log_ret[i] += phi[i] * log_ret[i - 1]

        start_price = rng.uniform(10, 500, size=n)
        close = start_price * np.exp(np.cumsum(log_ret, axis=0))
        prev_close = np.vstack([start_price, close[:-1]])
        open_ = prev_close * np.exp(0.2 * vol * rng.standard_normal((t, n)))
        wick = np.abs(rng.standard_normal((2, t, n))) * 0.5 * vol
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        base_volume = rng.uniform(1e5, 5e6, size=n)
        volume = np.round(
            base_volume
            * np.exp(0.3 * rng.standard_normal((t, n)))
            * (1 + 5 * np.abs(log_ret) / sigma / 10)
        )

        ts = self.timestamps()
        return pd.DataFrame(
            {
                "symbol": np.tile(np.array(self.symbols, dtype=object), t),
                "ts": np.repeat(ts.values, n),
                "open": open_.ravel(),
                "high": high.ravel(),
                "low": low.ravel(),
                "close": close.ravel(),
                "volume": volume.ravel(),
            }
        ).assign(ts=lambda f: f["ts"].dt.tz_localize("UTC"))

    def instruments(self) -> list[Instrument]:
        sector = self._sectors()
        return [
            Instrument(s, f"Synthetic {s}", SECTORS[k])
            for s, k in zip(self.symbols, sector, strict=True)
        ]

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        frame = select_symbols(self.generate(), symbols, "synthetic market")
        keep = set(frame["symbol"].unique())
        return RawBars(
            frame=frame,
            source=self.name,
            origin=f"synthetic(seed={self.seed})",
            instruments=[i for i in self.instruments() if i.symbol in keep],
        )
