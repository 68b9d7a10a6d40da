"""The hand-computed scenario: six bars of one symbol and an SMA cross (fast 1 / slow 2, 100
shares) whose every fill, fee and slippage is worked out by hand in tests/trading_runtime.
Costs: half spread 5 bps + fixed slippage 10 bps, commission 2 bps + 1 cent a share."""

from __future__ import annotations

from trading_runtime.config import RunConfig, StrategyConfig

BARS = [  # date, open, high, low, close, volume
    ("2024-01-02", 10.0, 10.0, 10.0, 10.0, 1e6),
    ("2024-01-03", 10.0, 11.0, 10.0, 11.0, 1e6),  # fast 11 > slow 10.5: long from the next open
    ("2024-01-04", 12.0, 12.5, 11.5, 12.0, 1e6),  # buy 100 @ 12 + 0.15% = 12.018
    ("2024-01-05", 11.0, 11.0, 9.0, 9.0, 1e6),  # fast 9 < slow 10.5: flat from the next open
    ("2024-01-08", 9.5, 9.6, 8.9, 9.0, 1e6),  # sell 100 @ 9.5 - 0.15% = 9.48575
    ("2024-01-09", 9.0, 9.2, 8.8, 8.9, 1e6),  # still flat
]
COSTS = {
    "half_spread_bps": 5.0,
    "slippage": "fixed",
    "slippage_bps": 10.0,
    "commission_bps": 2.0,
    "commission_per_share": 0.01,
    "commission_min": 0.0,
    "participation": 0.1,
    "latency_bars": 0,
}


def config(stream: str, **limits) -> RunConfig:
    strategy = StrategyConfig(
        signal="sma-cross",
        fast=1,
        slow=2,
        sizing="fixed",
        quantity=100,
        capital=100_000,
        limits={"reducing_drawdown": None, "halt_drawdown": None, **limits},
    )
    return RunConfig(stream=stream, strategies=[strategy], costs=COSTS, warmup_bars=0)
