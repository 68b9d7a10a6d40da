"""What the live-service tests share: a warehouse of three symbols' history for the stand-in
market to continue, the strategy they trade and the costs that make a live session's fills
comparable with a replay's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.support.bars import load_bars
from warehouse.providers.base import Instrument, RawBars
from warehouse.providers.continuation import next_sessions

SYMBOLS = ["AAA", "BBB", "CCC"]
NEW_BARS = 14
STRATEGY = {"signal": "sma-cross", "fast": 3, "slow": 8}
STRATEGY_ARGS = ["--signal", "sma-cross", "--fast", "3", "--slow", "8",
                 "--symbols", ",".join(SYMBOLS)]  # fmt: skip
ARGS = ["--feed", "alpaca", "--broker", "alpaca", *STRATEGY_ARGS]
COSTS = {"slippage": "fixed"}  # the stand-in's desk and the replay's simulator alike


def load_history(url: str) -> str:
    """160 sessions of :data:`SYMBOLS` (seeded random walks) loaded through the real loader
    into the database at ``url``; returns ``url``."""
    rng = np.random.default_rng(11)
    times = next_sessions(pd.Timestamp("2022-12-30", tz="UTC"), 160)
    frames = []
    for k, symbol in enumerate(SYMBOLS):
        close = (40.0 + 30 * k) * np.exp(np.cumsum(rng.normal(0, 0.02, len(times))))
        opens = close * np.exp(rng.normal(0, 0.005, len(times)))
        frames.append(pd.DataFrame({
            "symbol": symbol, "ts": times, "open": opens,
            "high": np.maximum(opens, close) * 1.01, "low": np.minimum(opens, close) * 0.99,
            "close": close, "volume": 1e6,
        }))  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    load_bars(url, RawBars(frame, "test", "test", [Instrument(s) for s in SYMBOLS]))
    return url
