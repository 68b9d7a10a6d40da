"""Hand-made markets for the statistical-arbitrage and hedging tests: a cointegrated pair next
to an unrelated random walk, and stocks driven by a market factor with known betas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warehouse.providers.base import Instrument, RawBars


def cointegrated_logs(
    bars: int, seed: int = 7, ratio: float = 1.5, spread_sd: float = 0.02
) -> np.ndarray:
    """(bars, 3) log prices: column 0 = ratio x column 1 + a stationary AR(1) spread (phi 0.8,
    innovations of sd ``spread_sd``) + 1; columns 1 and 2 independent random walks (daily sd
    1%)."""
    rng = np.random.default_rng(seed)
    walk = np.log(50.0) + np.cumsum(rng.normal(0, 0.01, (bars, 2)), axis=0)
    spread = np.zeros(bars)
    for t in range(1, bars):
        spread[t] = 0.8 * spread[t - 1] + rng.normal(0, spread_sd)
    first = 1.0 + ratio * walk[:, 0] + spread
    return np.column_stack([first - ratio * np.log(50.0), walk[:, 0], walk[:, 1]])


def factor_logs(bars: int, betas: np.ndarray, seed: int = 3, noise: float = 0.002) -> np.ndarray:
    """(bars, 1 + k) log prices: column 0 the market (daily sd 1%), then stocks whose returns
    are betas[t, i] x the market's plus small independent noise (betas per bar: they may move)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, bars)
    stocks = betas * market[:, None] + rng.normal(0, noise, betas.shape)
    returns = np.column_stack([market, stocks])
    returns[0] = 0.0
    return np.log(100.0) + np.cumsum(returns, axis=0)


def as_bars(logs: np.ndarray, symbols: list[str], start: str = "2020-01-01") -> RawBars:
    """Daily bars (business days) whose closes are exp(logs); opens at the previous close."""
    days = pd.bdate_range(start, periods=len(logs))
    frames = []
    for i, symbol in enumerate(symbols):
        close = np.exp(logs[:, i])
        opens = np.concatenate([[close[0]], close[:-1]])
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "ts": days.tz_localize("UTC"),
                    "open": opens,
                    "high": np.maximum(opens, close) * 1.001,
                    "low": np.minimum(opens, close) * 0.999,
                    "close": close,
                    "volume": 1e7,
                }
            )
        )
    instruments = [Instrument(s, sector="test") for s in symbols]
    return RawBars(pd.concat(frames, ignore_index=True), "hand", "test", instruments)
