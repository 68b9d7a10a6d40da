"""What the venue tests share: a cost model that exercises every cost (commission per share and
by notional, spread, slippage, a volume cap), a few hand-made bars on which the second buy fills
over two bars, and the rule strategy that trades them - so that each venue (the simulator, FIX,
Alpaca) is compared with the simulator on the same run."""

from __future__ import annotations

from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.engine import Engine
from trading_runtime.execution import Execution
from trading_runtime.settings import CostModel

COSTS = CostModel(
    commission_bps=2.0,
    commission_per_share=0.01,
    half_spread_bps=5.0,
    slippage="fixed",
    slippage_bps=10.0,
    participation=0.1,
    latency_bars=0,
)
BARS = [  # date, open, high, low, close, volume: the second buy fills over two bars
    ("2024-01-02", 10.0, 10.0, 10.0, 10.0, 1e6),
    ("2024-01-03", 10.0, 11.0, 10.0, 11.0, 1e6),
    ("2024-01-04", 12.0, 12.5, 11.5, 12.0, 1e6),
    ("2024-01-05", 11.0, 11.0, 9.0, 9.0, 1e6),
    ("2024-01-08", 9.5, 9.6, 8.9, 9.5, 1e6),
    ("2024-01-09", 9.6, 10.2, 9.5, 10.0, 600),
    ("2024-01-10", 10.0, 10.2, 9.8, 10.1, 1e6),
    ("2024-01-11", 10.1, 10.3, 10.0, 10.2, 1e6),
]


def hand_config(stream: str) -> RunConfig:
    """An SMA cross of fixed size on :data:`BARS` with :data:`COSTS`, no drawdown limits."""
    strategy = StrategyConfig(
        signal="sma-cross", fast=1, slow=2, sizing="fixed", quantity=100, capital=100_000,
        limits={"reducing_drawdown": None, "halt_drawdown": None},
    )  # fmt: skip
    return RunConfig(stream=stream, strategies=[strategy], costs=COSTS.model_dump(), warmup_bars=0)


def run_through(base: Engine, execution: Execution, model_batch: int) -> None:
    """Run ``base``'s configuration, feed and journal again with ``execution`` as its venue;
    the journal is closed afterwards."""
    engine = Engine(
        base.config, base.feed, base.instruments, base.journal, execution=execution,
        settings=base.settings, model_batch=model_batch,
    )  # fmt: skip
    try:
        engine.run()
    finally:
        base.journal.close()
