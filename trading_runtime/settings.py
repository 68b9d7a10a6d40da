"""Typed configuration of the runtime: risk limits (``QTIS_RISK_*``), execution costs
(``QTIS_COST_*``), the engine (``QTIS_TRADE_*``), walk-forward plans (``QTIS_WALKFORWARD_*``),
the end-of-run risk report (``QTIS_REPORT_*``) and the FIX gateway and simulated venue
(``QTIS_FIX_*``). Each is a plain settings object, so a strategy's own limits are the defaults
with some fields overridden."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class RiskLimits(QtisSettings):
    """Every pre-trade check's threshold. ``None`` switches a check off."""

    model_config = SettingsConfigDict(env_prefix="QTIS_RISK_")

    max_order_notional: float | None = Field(250_000.0, gt=0, description="per order")
    max_order_quantity: float | None = Field(100_000.0, gt=0, description="per order")
    max_position_notional: float | None = Field(500_000.0, gt=0, description="per symbol")
    max_position_quantity: float | None = Field(None, gt=0, description="per symbol")
    max_symbol_weight: float | None = Field(0.5, gt=0, description="|position| / equity")
    max_sector_weight: float | None = Field(1.0, gt=0, description="sector gross / equity")
    max_gross_exposure: float | None = Field(1.0, gt=0, description="sum |positions| / equity")
    max_net_exposure: float | None = Field(1.0, gt=0, description="|sum positions| / equity")
    allow_short: bool = Field(False, description="may a position go below zero")
    cash_account: bool = Field(
        True, description="buys need the cash (no margin); otherwise gross x margin <= equity"
    )
    initial_margin: float = Field(0.5, gt=0, le=1, description="margin accounts only")
    futures_margin: float = Field(
        0.1,
        gt=0,
        le=1,
        description="a future's initial margin per contract as a share of its notional, where"
        " the instrument has none of its own (market.instruments.initial_margin)",
    )
    max_gross_by_asset_class: dict[str, PositiveFloat] | None = Field(
        None,
        description='gross / equity per asset class, e.g. {"future": 2.0, "option": 0.5};'
        " classes not named are not limited",
    )
    fee_reserve_bps: float = Field(20.0, ge=0, description="cash kept back for fees, in bps")
    price_band: float | None = Field(0.1, gt=0, description="|limit or stop - last| / last")
    max_orders_per_bar: int | None = Field(100, gt=0, description="orders one account may send")
    reducing_drawdown: float | None = Field(
        0.10, gt=0, lt=1, description="drawdown from peak that allows risk-reducing orders only"
    )
    halt_drawdown: float | None = Field(0.20, gt=0, lt=1, description="drawdown that halts")
    max_var: float | None = Field(
        None, gt=0, description="1-bar historical VaR / equity after the order, at var_level"
    )
    max_es: float | None = Field(
        None, gt=0, description="1-bar historical expected shortfall / equity, at var_level"
    )
    var_level: float = Field(0.99, gt=0, lt=1, description="confidence of the VaR/ES limits")
    var_min_bars: int = Field(
        20, ge=2, description="bars of returns before the VaR/ES limits apply"
    )
    max_delta: float | None = Field(
        None,
        gt=0,
        description="options: |delta in currency| / equity after the order (the underlyings'"
        " share-equivalent value, options and stock together)",
    )
    max_gamma: float | None = Field(
        None,
        gt=0,
        description="options: |gamma in currency| after the order: the change of the delta in"
        " currency for a 1% move of every underlying",
    )
    max_vega: float | None = Field(
        None, gt=0, description="options: |vega| in currency per 1 volatility point (0.01)"
    )


class CostModel(QtisSettings):
    """What trading costs in the simulator. Slippage is on top of the half spread."""

    model_config = SettingsConfigDict(env_prefix="QTIS_COST_")

    commission_bps: float = Field(1.0, ge=0, description="of traded notional")
    commission_per_share: float = Field(0.0, ge=0)
    commission_min: float = Field(0.0, ge=0, description="per fill")
    half_spread_bps: float = Field(1.0, ge=0)
    slippage: Literal["fixed", "volatility", "impact"] = Field(
        "fixed", description="fixed bps | k x daily vol | square-root impact by participation"
    )
    slippage_bps: float = Field(2.0, ge=0, description="fixed model")
    volatility_k: float = Field(0.1, ge=0, description="volatility model: k x daily vol")
    impact_eta: float = Field(0.5, ge=0, description="impact model: eta x vol x sqrt(q / V)")
    participation: float | None = Field(
        0.1, gt=0, le=1, description="share of a bar's volume one symbol's fills may take"
    )
    latency_bars: int = Field(0, ge=0, description="bars an order waits before it can fill")

    @classmethod
    def free(cls) -> CostModel:
        """No costs and no volume limit: what other backtesters do by default."""
        return cls(
            commission_bps=0,
            commission_per_share=0,
            commission_min=0,
            half_spread_bps=0,
            slippage_bps=0,
            volatility_k=0,
            impact_eta=0,
            participation=None,
            latency_bars=0,
        )


class RuntimeSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_TRADE_")

    capital: float = Field(1_000_000.0, gt=0, description="starting cash per strategy")
    base_currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="currency of the accounts' cash, P&L, exposure and limits; instruments in"
        " others convert through FX pairs (docs/multi_currency.md)",
    )
    target_vol: float = Field(0.15, gt=0, description="annual volatility the sizer aims at")
    max_weight: float = Field(0.25, gt=0, description="sizer's cap per symbol (of equity)")
    min_trade: float = Field(
        0.1, ge=0, description="rebalance only when the change exceeds this share of target"
    )
    snapshot_every: int = Field(250, ge=1, description="bars between snapshots (paper)")
    command_poll_seconds: float = Field(
        0.2, ge=0, description="how often a paper run looks for operators' commands"
    )
    journal_batch: int = Field(20_000, ge=1, description="events per COPY (backtests)")
    bars_per_year: float = Field(252.0, gt=0)
    return_window: int = Field(
        252, ge=2, description="bars of returns kept for portfolio optimization and VaR limits"
    )
    option_rate: float = Field(
        0.0,
        description="options: risk-free rate (continuously compounded, annual) their implied"
        " volatility and greeks are computed with (docs/options.md)",
    )
    option_dividend_yield: float = Field(
        0.0, description="options: the underlyings' dividend yield (continuously compounded)"
    )
    option_fallback_vol: float = Field(
        0.2,
        gt=0,
        description="options: the volatility used where a close implies none (below intrinsic"
        " value, say)",
    )


class WalkForwardSettings(QtisSettings):
    """The plan and the per-window model (``QTIS_WALKFORWARD_*``)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_WALKFORWARD_")

    windows: int = Field(4, ge=1, description="traded windows, the latest bars")
    train_bars: int = Field(756, ge=20, description="training bars (the first window's)")
    test_bars: int = Field(126, ge=2, description="bars each window trades")
    mode: Literal["anchored", "rolling"] = Field(
        "anchored", description="anchored: training grows from a fixed start; rolling: slides"
    )
    source: Literal["retrain", "champion"] = Field(
        "retrain", description="fit a model per window, or trade the champion of its day"
    )
    purge: int | None = Field(
        None, ge=1, description="bars between training and trading; default the longest horizon"
    )
    validation: float = Field(0.15, ge=0, lt=1, description="retrain: early-stopping share")
    min_history: int = Field(
        250, ge=0, description="retrain: a symbol's first bars left out (features warm up)"
    )
    warmup_bars: int | None = Field(
        None,
        ge=0,
        description="bars before a window that warm features up; default the"
        " longest feature warm-up (a model trades only once every feature is defined)",
    )
    xgb_estimators: int = Field(300, ge=1, description="retrain: boosting rounds")
    xgb_max_depth: int = Field(4, ge=1)
    seed: int = 7


class RiskReportSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_REPORT_")

    shocks: dict[str, float] = Field(
        default_factory=lambda: {"all": -0.10},
        description='instant price moves: {"AAPL": -0.2, "sector:Energy": -0.1, "all": -0.05}',
    )
    stress_windows: int = Field(5, ge=1, description="worst historical windows replayed")
    stress_horizon: int = Field(10, ge=1, description="bars per stress window")
    correlation_recent: int = Field(21, ge=2, description="bars of the recent correlation")
    correlation_baseline: int = Field(252, ge=2, description="bars of the baseline before it")
    correlation_threshold: float = Field(0.2, gt=0, description="move that raises the alert")
    paths: int = Field(10_000, ge=100, description="Monte Carlo paths")
    seed: int = 0
    backtest_bars: int = Field(250, ge=20, description="VaR backtest: bars tested (the last)")
    backtest_window: int = Field(250, ge=30, description="VaR backtest: bars each forecast uses")
    backtest_refit: int = Field(21, ge=1, description="VaR backtest: bars between refits")
    backtest_paths: int = Field(2_000, ge=100, description="VaR backtest: most simulated paths")


class FixSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_FIX_")

    host: str = Field("127.0.0.1", description="the venue's address")
    port: int = Field(0, ge=0, le=65535, description="the venue's port; 0: a free one (venue)")
    sender_comp_id: str = Field("QTIS", min_length=1, description="our SenderCompID (49)")
    target_comp_id: str = Field("VENUE", min_length=1, description="the venue's CompID (56)")
    heartbeat_seconds: int = Field(30, ge=1, description="HeartBtInt (108) sent at Logon")
    answer_timeout: float = Field(
        2.0,
        gt=0,
        description="seconds to wait for a Logon, an order's first report, a"
        " cancel's answer or a bar's reports; later answers come with the next bar",
    )
    connect_timeout: float = Field(2.0, gt=0, description="seconds for the TCP connect")
    store_dir: Path | None = Field(
        None,
        description="per session: sequence numbers and sent messages; unset: $QTIS_HOME/fix",
    )
    home: Path = Field(
        Path(".qtis"),
        validation_alias=AliasChoices("QTIS_HOME"),
        description="The warehouse's directory for local state: sessions keep their files under"
        " its fix/ when no store_dir is set",
    )

    def session_dir(self, sender: str, target: str) -> Path:
        """The files of the session ``sender``->``target``: under ``store_dir``, else under
        QTIS_HOME (never the working directory: two processes must find the same files, and
        the lock on them)."""
        return (self.store_dir or self.home / "fix") / f"{sender}-{target}"


class LiveSettings(QtisSettings):
    """A live session (`qtis trade live`): how the feed decides a cross-section is complete or
    stale, when the book is reconciled with the broker and what a difference does, and what
    a stop does with the open orders."""

    model_config = SettingsConfigDict(env_prefix="QTIS_LIVE_")

    frequency: Literal["1d", "1min"] = Field("1d", description="bar frequency traded")
    grace_seconds: float = Field(
        5.0,
        ge=0,
        description="after a bar's first symbol arrived, how long the feed waits for the"
        " others before handing the cross-section over without them",
    )
    stale_seconds: float = Field(
        120.0,
        gt=0,
        description="no new cross-section for this long: the feed is stale (alert, no trading"
        " on the bars that arrive while it catches up)",
    )
    reconcile_minutes: float = Field(
        15.0, gt=0, description="the book is compared with the broker this often (and at start)"
    )
    reconcile_policy: Literal["adopt", "halt"] = Field(
        "halt",
        description="a difference with the broker: adopt the broker's state (a journaled"
        " correction) or halt trading until an operator resumes",
    )
    reconcile_attempts: int = Field(
        3,
        ge=1,
        description="comparisons before a difference counts: between two, the open orders'"
        " states are read back from the broker, so a fill still on its way is not taken for one",
    )
    cancel_on_stop: bool = Field(
        True, description="SIGTERM cancels the open orders (False: they stay at the broker)"
    )
    health_host: str = Field("127.0.0.1", description="/metrics and /healthz address")
    health_port: int = Field(9108, ge=0, le=65535, description="/metrics and /healthz; 0: free")
