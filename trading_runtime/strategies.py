"""Strategies as the engine runs them: a signal source, how its strength becomes target
positions (a sizer or the portfolio optimizer), its stops, and its sub-account's name.

Signal sources and sizers are looked up by name in registries (``SIGNALS``, ``SIZERS``), so a
new one is one factory and one entry, not another branch in the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from serving.predictor import Predicting
from trading_runtime.broker import CrossSection
from trading_runtime.config import StrategyConfig
from trading_runtime.delta_hedge import DeltaHedge
from trading_runtime.futures import FuturesRolls
from trading_runtime.hedging import BetaHedge
from trading_runtime.history import ReturnWindow
from trading_runtime.instruments import Instrument
from trading_runtime.options import OptionExpiries, OptionMarket
from trading_runtime.portfolio.sizer import PortfolioSizer
from trading_runtime.settings import RuntimeSettings
from trading_runtime.signals import BuyAndHold, ModelSignals, SignalSource, SmaCross
from trading_runtime.sizing import EqualWeight, FixedQuantity, Sizer, StopPolicy, VolatilityTarget
from trading_runtime.stat_arb import PairsSignals


@dataclass(frozen=True)
class StrategyContext:
    """What building a strategy may need from the run."""

    symbols: list[str]
    instruments: dict[str, Instrument]
    columns: list[str]  # the online features, in order
    returns: ReturnWindow
    settings: RuntimeSettings
    predictor: Predicting | None
    local: bool  # the model is asked in process, not over HTTP
    model_batch: int  # windows per model request (QTIS_SERVE_MAX_WINDOWS)

    @property
    def traded(self) -> int:
        """How many symbols a sizer shares the equity among: an FX pair is a rate, never
        traded (at least 1)."""
        return sum(self.instruments[s].asset_class != "fx" for s in self.symbols) or 1


class Overlay(Protocol):
    """What adjusts a strategy's target quantities after sizing (``prices`` in the account's
    currency, ``current``: held and working)."""

    def targets(
        self,
        target: np.ndarray,
        bar: CrossSection,
        prices: np.ndarray,
        current: np.ndarray,
        equity: float,
    ) -> np.ndarray: ...


@dataclass
class Slot:
    """One strategy and its sub-account."""

    config: StrategyConfig
    source: SignalSource
    sizer: Sizer | None  # None: the portfolio optimizer sizes
    stops: StopPolicy
    rebalance: bool
    portfolio: PortfolioSizer | None = None
    overlays: list[Overlay] = field(default_factory=list)  # a beta hedge, futures rolls

    def rolling(self) -> set[str]:
        """The futures whose orders on this bar are rolls (out of the old contract and into
        the next): their orders are tagged ``roll`` in the journal."""
        due = (d for o in self.overlays if isinstance(o, FuturesRolls) for d in o.due)
        return {s for d in due for s in (d.from_symbol, d.to_symbol) if s}

    @property
    def needs_volatility(self) -> bool:
        return self.sizer is not None and self.sizer.needs_volatility


def _model(s: StrategyConfig, ctx: StrategyContext) -> SignalSource:
    if ctx.predictor is None:
        raise ValueError(f"strategy {s.name} trades the model: a predictor is needed")
    return ModelSignals(
        ctx.predictor,
        ctx.columns,
        len(ctx.symbols),
        horizon=s.horizon,
        threshold=s.threshold,
        local=ctx.local,
        batch=ctx.model_batch,
        role=s.model_role,
    )


SIGNALS: dict[str, Callable[[StrategyConfig, StrategyContext], SignalSource]] = {
    "buy-and-hold": lambda s, ctx: BuyAndHold(len(ctx.symbols)),
    "sma-cross": lambda s, ctx: SmaCross(len(ctx.symbols), s.fast, s.slow),
    "model": _model,
    "pairs": lambda s, ctx: PairsSignals(len(ctx.symbols), **s.pairs.model_dump()),
}


def _hedge(s: StrategyConfig, ctx: StrategyContext) -> BetaHedge | None:
    if s.hedge is None:
        return None
    if s.hedge.symbol not in ctx.symbols:
        raise ValueError(
            f"strategy {s.name} hedges with {s.hedge.symbol}, which is not in the run's"
            f" symbols {ctx.symbols}: add it to --symbols"
        )
    multipliers = np.array([ctx.instruments[sym].multiplier for sym in ctx.symbols])
    return BetaHedge(
        ctx.symbols.index(s.hedge.symbol),
        ctx.returns,
        multipliers,
        window=s.hedge.window,
        band=s.hedge.band,
        target_beta=s.hedge.target_beta,
        min_bars=min(20, s.hedge.window),
    )


SIZERS: dict[str, Callable[[StrategyConfig, StrategyContext], Sizer]] = {
    "fixed": lambda s, ctx: FixedQuantity(s.quantity),
    "equal": lambda s, ctx: EqualWeight(ctx.traded),
    "vol-target": lambda s, ctx: VolatilityTarget(
        ctx.traded,
        s.target_vol or ctx.settings.target_vol,
        s.max_weight or ctx.settings.max_weight,
        ctx.settings.bars_per_year,
    ),
}


def build_slot(s: StrategyConfig, ctx: StrategyContext) -> Slot:
    """The strategy ``s`` ready to trade: its signal source, sizing, stops and overlays."""
    source = SIGNALS[s.signal](s, ctx)
    hedge = _hedge(s, ctx)
    rolls = FuturesRolls.of(ctx.symbols, ctx.instruments, s.roll_days)
    expiries = OptionExpiries.of(ctx.symbols, ctx.instruments)  # expired options flat
    delta = s.delta_hedge and DeltaHedge.of(s.delta_hedge.underlying, s.delta_hedge.band,
                                            ctx.symbols, ctx.instruments,
                                            OptionMarket.of(ctx.settings))  # fmt: skip
    overlays = [o for o in (rolls, expiries, hedge, delta) if o]
    hedged = hedge is not None or bool(delta)
    rebalance = s.rebalance if s.rebalance is not None else s.signal == "model" or hedged
    stops = StopPolicy(s.stop_atr, s.trail_atr)
    if s.portfolio is None:
        return Slot(s, source, SIZERS[s.sizing](s, ctx), stops, rebalance, overlays=overlays)
    sectors = {sym: ctx.instruments[sym].sector for sym in ctx.symbols}
    multipliers = np.array([ctx.instruments[sym].multiplier for sym in ctx.symbols])
    portfolio = PortfolioSizer(
        s.portfolio, ctx.symbols, ctx.returns, multipliers, sectors, s.horizon
    )
    return Slot(s, source, None, stops, True, portfolio, overlays)
