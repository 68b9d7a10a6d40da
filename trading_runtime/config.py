"""What a run is: its strategies (each with its own sub-account and limits), universe, dates,
costs and mode. Stored in the journal's first event, so a resumed run is the same run."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trading_runtime.portfolio.optimizers import PortfolioConfig
from trading_runtime.settings import CostModel, RiskLimits, RuntimeSettings


class PairsConfig(BaseModel):
    """Pairs trading (``signal: pairs``): cointegration on a trailing formation window."""

    model_config = ConfigDict(extra="forbid")

    formation: int = Field(250, ge=30, description="bars the cointegration is tested over")
    reselect: int = Field(63, ge=1, description="bars between re-selections of the pairs")
    entry_z: float = Field(2.0, gt=0, description="spread z-score that opens a position")
    exit_z: float = Field(0.5, ge=0, description="z-score within which it closes")
    method: Literal["engle-granger", "johansen"] = "engle-granger"
    significance: float = Field(0.05, gt=0, lt=1, description="Engle-Granger p-value cut")
    max_pairs: int = Field(2, ge=1, description="pairs traded at once, no symbol in two")

    @model_validator(mode="after")
    def _check(self) -> PairsConfig:
        if self.exit_z >= self.entry_z:
            raise ValueError(f"exit_z {self.exit_z} must be below entry_z {self.entry_z}")
        if self.method == "johansen" and self.significance != 0.05:
            raise ValueError("johansen is read at its 95% critical value: significance 0.05")
        return self


class HedgeConfig(BaseModel):
    """A beta hedge on the strategy's book (``hedge:``): ``symbol`` is bought or sold so the
    book's beta to it stays within ``band`` of ``target_beta`` (fractions of equity)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str
    window: int = Field(63, ge=2, description="bars of returns the betas are estimated on")
    band: float = Field(0.1, gt=0, description="beta drift (of equity) tolerated before re-hedging")
    target_beta: float = Field(0.0, description="the book's beta the hedge aims at")


class DeltaHedgeConfig(BaseModel):
    """A delta hedge of the strategy's options on ``underlying`` (``delta_hedge:``): the
    underlying is traded so the options' delta plus the stock stays within ``band`` shares."""

    model_config = ConfigDict(extra="forbid")

    underlying: str
    band: float = Field(gt=0, description="|delta| in units of the underlying before re-hedging")


class StrategyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("main", pattern=r"^[A-Za-z0-9_]+$", description="its sub-account")
    signal: Literal["buy-and-hold", "sma-cross", "model", "pairs"] = "sma-cross"
    fast: int = Field(20, ge=1)
    slow: int = Field(50, ge=2)
    horizon: int = Field(1, ge=1, description="model forecast horizon traded")
    threshold: float = Field(0.0, ge=0, description="smallest model forecast acted on")
    model_role: Literal["champion", "challenger"] = Field(
        "champion", description="model signal: which registered model it asks"
    )
    shadow: bool = Field(
        False,
        description="orders go to a hypothetical book (a simulated venue of its own, same"
        " costs and bars), never to the real venue",
    )
    sizing: Literal["fixed", "equal", "vol-target"] = "vol-target"
    vol: Literal["atr", "garch"] = Field(
        "atr", description="vol-target: daily volatility from ATR/close or the GARCH forecast"
    )
    quantity: float = Field(100.0, gt=0, description="fixed sizing: units per symbol")
    capital: float | None = Field(None, gt=0, description="default QTIS_TRADE_CAPITAL")
    target_vol: float | None = Field(None, gt=0)
    max_weight: float | None = Field(None, gt=0)
    rebalance: bool | None = Field(
        None, description="trade size changes too, not only entries and exits (model default)"
    )
    stop_atr: float | None = Field(None, gt=0, description="fixed stop, ATRs from entry")
    trail_atr: float | None = Field(None, gt=0, description="trailing stop, ATRs from close")
    algo: Literal["market", "twap", "vwap"] = "market"
    algo_bars: int = Field(4, ge=1, description="bars a TWAP/VWAP order is spread over")
    limits: dict = Field(default_factory=dict, description="overrides of QTIS_RISK_* limits")
    portfolio: PortfolioConfig | None = Field(
        None,
        description="size by a portfolio optimizer (replaces sizing); a method name or"
        " its full configuration",
    )

    pairs: PairsConfig | None = Field(None, description="signal pairs: its settings")
    hedge: HedgeConfig | None = Field(None, description="keep the book's beta to a symbol")
    delta_hedge: DeltaHedgeConfig | None = Field(
        None, description="keep the options' delta to an underlying within a band"
    )
    roll_days: int = Field(
        5, ge=0, description="futures: trading days before expiry a root rolls to the next"
    )

    @field_validator("portfolio", mode="before")
    @classmethod
    def _method_name(cls, value):
        return {"method": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> StrategyConfig:
        if self.stop_atr and self.trail_atr:
            raise ValueError("give stop_atr or trail_atr, not both")
        if self.model_role == "challenger" and self.signal != "model":
            raise ValueError("model_role challenger goes with signal model")
        limits = RiskLimits(**self.limits)  # an unknown or out-of-range limit is refused here
        if self.signal == "pairs":
            self._check_pairs(limits)
        elif self.pairs is not None:
            raise ValueError("pairs settings go with signal pairs")
        if self.hedge is not None and not limits.allow_short:
            raise ValueError("a beta hedge sells its instrument short: add allow_short to limits")
        if self.delta_hedge is not None and not limits.allow_short:
            raise ValueError("a delta hedge sells the underlying short: add allow_short to limits")
        return self

    def _check_pairs(self, limits: RiskLimits) -> None:
        if self.pairs is None:
            self.pairs = PairsConfig()
        if not limits.allow_short:
            raise ValueError("pairs sell one leg short: add allow_short: true to limits")
        if self.portfolio is not None or self.sizing != "equal":
            raise ValueError(
                "pairs size their legs by the hedge ratio: use sizing equal (no portfolio)"
            )

    @property
    def history_bars(self) -> int:
        """Bars of history the strategy needs before its first decision (warm-up)."""
        return max(
            self.pairs.formation if self.pairs else 0, self.hedge.window if self.hedge else 0
        )

    def resolved_limits(self) -> dict:
        return RiskLimits(**self.limits).model_dump()


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["backtest", "paper", "live"] = "backtest"
    stream: str
    symbols: list[str] | None = None
    start: date | None = None
    end: date | None = None
    strategies: list[StrategyConfig] = Field(default_factory=lambda: [StrategyConfig()])
    costs: dict = Field(default_factory=dict, description="overrides of QTIS_COST_* costs")
    free_costs: bool = Field(False, description="no commission, spread, slippage or volume cap")
    model_url: str | None = Field(None, description="prediction API; None: in process")
    warmup_bars: int = Field(250, ge=0, description="bars before start that warm features up")
    in_sample: bool = Field(
        False, description="let the model trade bars it was trained on (not out of sample)"
    )
    bars_per_second: float | None = Field(None, gt=0, description="paper pace; None: flat out")
    flatten_at_end: bool = Field(
        False,
        description="exit every position on the last bar whose orders fill before the end, so"
        " the run's P&L is realized and its own (walk-forward windows)",
    )
    execution: Literal["simulated", "fix", "fix-venue", "alpaca"] = Field(
        "simulated",
        description="the simulated broker in process; FIX 4.4 to the venue at QTIS_FIX_HOST:"
        "PORT; FIX 4.4 to an in-process simulated venue (the same fills, over the wire); or"
        " Alpaca's trading API at QTIS_ALPACA_TRADING_URL (live sessions)",
    )

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names must differ (they name sub-accounts): {names}")
        if self.mode == "live" and (self.end is not None or self.flatten_at_end):
            raise ValueError("a live session runs until it is stopped: no end, no flatten_at_end")
        if self.execution == "alpaca" and self.mode != "live":
            raise ValueError("Alpaca execution trades live sessions only (`qtis trade live`)")
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        self.cost_model()
        return self

    def cost_model(self) -> CostModel:
        base = CostModel.free().model_dump() if self.free_costs else CostModel().model_dump()
        return CostModel(**{**base, **self.costs})

    def capital(self, strategy: StrategyConfig, settings: RuntimeSettings) -> float:
        return strategy.capital or settings.capital
