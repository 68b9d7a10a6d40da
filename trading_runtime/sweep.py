"""Parameter sweeps: an SMA-cross grid (fast x slow windows) or a model-threshold grid (the
champion's forecasts acted on above each threshold), times the sizing parameters, traded over
the universe in one compiled pass per cell (``sweep_kernel``), with costs, and the grid's
metrics - with the deflated Sharpe ratio of the best cell given how many cells were tried, since
picking the best of a grid is a multiple test.

A cell trades as ``qtis trade backtest`` would with the same options: market orders decided at a
bar's close fill at the next open (after ``latency_bars``) with the cost model's half spread,
fixed slippage and commission, up to its volume participation; sizing, lot rounding, the order
caps, the pre-trade checks a market order meets and the drawdown states are the engine's. Its
fills equal the engine's (tests/trading_runtime/test_sweep.py), orders still working when the
next one is sent included, up to ``sweep_kernel.SLOTS`` of them per symbol (more, with a long
latency or a tight volume cap: the last two are netted and the cell counted ``approximate``).
A model cell rebalances as the engine's model strategy does (an order when the target moved by
``min_trade`` of itself, or to flat); its forecasts are made once for the whole grid
(``sweep_model``), since they do not depend on the threshold; with ``allow_short`` it goes
short on negative forecasts. Not swept: stops, TWAP/VWAP, portfolio sizing, VaR/ES limits and
the volatility and impact slippage models (the sweep says so rather than ignore them).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from core.errors import InputError
from quant.conventions import PER_PERIOD, Conventions
from quant.performance import path_drawdowns, path_sharpe
from quant.significance import DeflatedSharpe, deflated_sharpe_ratio
from trading_runtime import sweep_kernel as k
from trading_runtime.feed import BarFeed
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel, RiskLimits, RuntimeSettings
from trading_runtime.sizing import EqualWeight
from transforms.online import OnlineFeatureEngine
from transforms.spec import default_spec

SIZINGS = {"fixed": 0, "equal": 1, "vol-target": 2}
SIGNALS = {"sma-cross": 0, "model": 1}  # the kernel's signal kinds
MAX_CELLS = 100_000
LIMIT_FIELDS = (
    "max_order_notional",
    "max_order_quantity",
    "max_position_notional",
    "max_position_quantity",
    "max_symbol_weight",
    "max_sector_weight",
    "max_gross_exposure",
    "max_net_exposure",
    "allow_short",
    "cash_account",
    "initial_margin",
    "fee_reserve_bps",
    "max_orders_per_bar",
    "reducing_drawdown",
    "halt_drawdown",
)  # fmt: skip  (the kernel's limits columns, in order)


class SweepError(ValueError, InputError):
    """A grid or an option the sweep cannot run; the message says what to change."""


def parse_range(
    text: str, name: str, integer: bool = True, zero: bool = False
) -> tuple[float, ...]:
    """``start:stop:step`` (stop included when the steps reach it), ``a,b,c`` or one value;
    every value above 0 (``zero``: at least 0)."""
    cast = int if integer else float
    kind = "whole numbers" if integer else "numbers"
    try:
        if ":" not in text:
            values = tuple(cast(v) for v in text.split(","))
        else:
            parts = [cast(p) for p in text.split(":")]
            if len(parts) != 3:
                raise SweepError(f"--{name} {text!r}: a range is start:stop:step")
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise SweepError(
                    f"--{name} {text!r}: needs start <= stop and a step above 0, e.g. 5:50:5"
                )
            count = math.floor((stop - start) / step + 1e-9) + 1
            values = tuple(cast(round(start + i * step, 12)) for i in range(count))
    except ValueError as exc:
        if isinstance(exc, SweepError):
            raise
        raise SweepError(
            f"--{name} {text!r}: expected {kind} as start:stop:step, a,b,c or one value"
        ) from exc
    if any(v < 0 or (v == 0 and not zero) for v in values):
        raise SweepError(
            f"--{name} {text!r}: every value must be {'at least' if zero else 'above'} 0"
        )
    return values


@dataclass(frozen=True)
class Grid:
    """The cells: every fast x slow pair with fast < slow (``signal`` sma-cross) or every
    threshold (model), times the sizing parameter's values (``sizes``: units for fixed, annual
    target vol for vol-target; ``caps``: vol-target's largest weight per symbol)."""

    fast: tuple[int, ...] = ()
    slow: tuple[int, ...] = ()
    sizing: str = "vol-target"
    sizes: tuple[float, ...] = (0.15,)
    caps: tuple[float, ...] = (0.25,)
    signal: str = "sma-cross"
    thresholds: tuple[float, ...] = ()  # model: the smallest forecast acted on, per cell

    def cells(self) -> list[dict[str, Any]]:
        if self.sizing not in SIZINGS:
            raise SweepError(f"--sizing {self.sizing!r}: one of {', '.join(SIZINGS)}")
        if self.signal not in SIGNALS:
            raise SweepError(f"--signal {self.signal!r}: sma-cross or model")
        model = self.signal == "model"
        if model and (self.fast or self.slow):
            raise SweepError("--fast and --slow go with --signal sma-cross")
        if self.thresholds and not model:
            raise SweepError("--threshold goes with --signal model")
        sizes = self.sizes if self.sizing != "equal" else (EqualWeight(1).gross,)
        caps = self.caps if self.sizing == "vol-target" else (math.nan,)
        if model:
            signals = [{"threshold": h} for h in self.thresholds or (0.0,)]
        else:
            pairs = itertools.product(self.fast, self.slow)
            signals = [{"fast": f, "slow": s} for f, s in pairs if f < s]
        out = [p | {"size": z, "cap": c} for p, z, c in itertools.product(signals, sizes, caps)]
        if not out:
            raise SweepError(
                f"no cell with fast < slow in --fast {list(self.fast)} x --slow {list(self.slow)}"
            )
        if len(out) > MAX_CELLS:
            raise SweepError(f"{len(out):,} cells: at most {MAX_CELLS:,}; use coarser steps")
        return out


@dataclass
class Market:
    """The bars a sweep trades, as arrays (bars x symbols), and the instruments' columns."""

    symbols: list[str]
    times: Any  # pd.DatetimeIndex
    first: int  # the first traded bar (earlier ones warm the means up)
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    lot: np.ndarray
    multiplier: np.ndarray
    sector: np.ndarray  # index into the sectors, -1: none
    n_sectors: int
    atr: np.ndarray | None = None  # atr_14 of the online features, for vol-target
    # a model grid's (``sweep_model``): the champion's forecast (NaN: none) and strength
    forecast: np.ndarray | None = None
    strength: np.ndarray | None = None

    @classmethod
    def from_feed(cls, feed: BarFeed, instruments: dict[str, Instrument], atr=None) -> Market:
        names = sorted({instruments[s].sector for s in feed.symbols} - {None, ""})
        sector = [names.index(instruments[s].sector) if instruments[s].sector in names else -1
                  for s in feed.symbols]  # fmt: skip
        a = feed.arrays
        return cls(
            list(feed.symbols), feed.times, feed.first_trading_step, a["open"], a["close"],
            a["volume"], np.array([instruments[s].lot_size for s in feed.symbols], float),
            np.array([instruments[s].multiplier for s in feed.symbols], float),
            np.array(sector, np.int64), max(len(names), 1), atr,
        )  # fmt: skip


def online_atr(feed: BarFeed) -> np.ndarray:
    """atr_14 per bar and symbol as the engine's online features give it: the same updater
    replayed over the bars, with the other features of the spec left out."""
    spec = default_spec()
    spec = replace(spec, features=tuple(f for f in spec.features if "atr_14" in f.outputs))
    features = OnlineFeatureEngine(feed.symbols, spec)
    column = list(features.columns).index("atr_14")
    out = np.full(feed.arrays["close"].shape, np.nan)
    for t, bar in enumerate(feed.replay()):
        row = features.update(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        out[t] = row[:, column]
    return out


def load_market(
    url: str,
    instruments: dict[str, Instrument],
    start: date | None,
    end: date | None,
    warmup_bars: int,
    sizing: str,
) -> Market:
    feed = BarFeed.from_warehouse(url, instruments, start, end, warmup_bars)
    atr = online_atr(feed) if sizing == "vol-target" else None
    return Market.from_feed(feed, instruments, atr)


def cost_columns(costs: CostModel) -> np.ndarray:
    """The kernel's cost columns; a cost model it does not simulate is refused."""
    if costs.slippage != "fixed":
        raise SweepError(
            f"slippage {costs.slippage!r}: the sweep simulates fixed slippage only"
            " (--slippage fixed); backtest the chosen cell with the other models"
        )
    participation = math.nan if costs.participation is None else costs.participation
    return np.array([costs.commission_bps, costs.commission_per_share, costs.commission_min,
                     costs.half_spread_bps, costs.slippage_bps, participation])  # fmt: skip


def limit_columns(limits: RiskLimits) -> np.ndarray:
    """The kernel's limit columns (NaN: off); VaR/ES limits are refused (not simulated)."""
    if limits.max_var is not None or limits.max_es is not None:
        raise SweepError("VaR/ES limits are not simulated by the sweep: set them off (none)")
    values = [getattr(limits, name) for name in LIMIT_FIELDS]
    return np.array([math.nan if v is None else float(v) for v in values])


@dataclass
class Sweep:
    """What a sweep trades with: the market, grid, costs, limits, capital, bar conventions."""

    market: Market
    grid: Grid
    costs: CostModel = field(default_factory=CostModel)
    limits: RiskLimits = field(default_factory=RiskLimits)
    capital: float = 1_000_000.0
    conventions: Conventions = field(default_factory=Conventions)
    # a model cell's rebalance band, as QTIS_TRADE_MIN_TRADE gives the engine's
    min_trade: float = RuntimeSettings.model_fields["min_trade"].default

    def __post_init__(self) -> None:
        self.cells = self.grid.cells()
        m = self.market
        if self.grid.sizing == "vol-target" and m.atr is None:
            raise SweepError("vol-target sizing needs the online ATR (Market.atr)")
        self.signal_arrays = self._signal_arrays()
        with np.errstate(invalid="ignore", divide="ignore"):
            vol = m.atr / m.close if m.atr is not None else np.zeros_like(m.close)
        self.bars = (m.open, m.close, m.volume, vol)
        at = {w: i for i, w in enumerate(self.windows.tolist())}
        signal, kind = SIGNALS[self.grid.signal], SIZINGS[self.grid.sizing]
        self.cell_rows = np.array(
            [[signal, at.get(c.get("fast"), 0), at.get(c.get("slow"), 0), c.get("fast", 0),
              c.get("slow", 0), kind] for c in self.cells],
            np.int64,
        )  # fmt: skip
        self.sizes = np.array(
            [[c["size"], c["cap"], c.get("threshold", math.nan)] for c in self.cells], float
        )
        self.market_args = (m.lot, m.multiplier, m.sector, self.costs.latency_bars,
                            self.conventions.periods_per_year, m.n_sectors,
                            self.min_trade)  # fmt: skip
        self.cost_args, self.limit_args = cost_columns(self.costs), limit_columns(self.limits)

    def _signal_arrays(self) -> tuple[np.ndarray, ...]:
        """The kernel's ``sig``: (means, comp, seen) of the SMA's windows and (forecast,
        strength) of the model, the other signal's empty."""
        m, none = self.market, np.zeros((0, 0))
        if self.grid.signal == "model":
            if m.forecast is None or m.strength is None:
                raise SweepError("a model grid trades the champion's forecasts: load_model_market")
            self.windows = np.zeros(0, np.int64)
            seen = np.zeros((0, 0), np.int64)
            return np.zeros((0, 0, 0)), none, seen, m.forecast, m.strength
        windows = sorted({c["fast"] for c in self.cells} | {c["slow"] for c in self.cells})
        self.windows = np.array(windows, np.int64)
        comp, seen = k.compress(m.close)
        return k.rolling_means(comp, seen, self.windows), comp, seen, none, none

    def run(self, cells: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Equity per cell and traded bar, and each cell's counters (kernel ``st`` columns);
        ``cells``: the first that many only."""
        m = self.market
        n = len(self.cells) if cells is None else cells
        equity = np.zeros((n, len(m.times) - m.first))
        stats = np.zeros((n, 12))
        k.run_cells(self.bars, m.first, self.signal_arrays, self.cell_rows[:n], self.sizes[:n],
                    self.market_args, self.cost_args, self.limit_args, self.capital, equity,
                    stats)  # fmt: skip
        return equity, stats

    def fills(self, index: int) -> list[dict[str, Any]]:
        """Cell ``index``'s fills, as the engine reports them (symbol, ts, side, quantity,
        price, fee), in time order."""
        m = self.market
        cell = (*(int(v) for v in self.cell_rows[index]), *(float(v) for v in self.sizes[index]))
        equity, st = np.zeros(len(m.times) - m.first), np.zeros(12)
        args = (self.market_args, self.cost_args, self.limit_args, self.capital, equity, st)
        k.run_cell(self.bars, m.first, self.signal_arrays, cell, *args, np.zeros((0, 5)))
        rec = np.zeros((int(st[k.FILLS]), 5))  # as many as the first pass counted
        k.run_cell(self.bars, m.first, self.signal_arrays, cell, *args, rec)
        return [
            {"symbol": m.symbols[int(s)], "ts": m.times[int(t)].isoformat(),
             "side": "buy" if q > 0 else "sell", "quantity": abs(q), "price": p, "fee": fee}
            for t, s, q, p, fee in rec[: int(st[k.NREC])]
        ]  # fmt: skip


@dataclass
class SweepResult:
    """Every cell's parameters and metrics after costs, the best cell (by Sharpe) and its
    deflated Sharpe ratio given the cells tried."""

    cells: list[dict[str, Any]]
    best: int
    deflated: DeflatedSharpe | None
    bars: int  # traded bars
    symbols: int
    seconds: float  # the grid's cells, the kernel compiled
    equity: np.ndarray = field(repr=False)
    compile_seconds: float = 0.0  # the kernel's compile, or its load from numba's cache

    def ranked(self) -> list[dict[str, Any]]:
        """Cells by Sharpe, best first (cells that never moved last)."""
        return sorted(self.cells, key=lambda c: -np.nan_to_num(c["sharpe"], nan=-np.inf))

    def to_json(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "best": self.cells[self.best],
            "deflated_sharpe": self.deflated.to_dict() if self.deflated else None,
            "n_cells": len(self.cells),
            "bars": self.bars,
            "symbols": self.symbols,
            "seconds": self.seconds,
            "compile_seconds": self.compile_seconds,
            "approximate_cells": sum(c["approximate"] for c in self.cells),
        }


def curves(sweep: Sweep, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's equity from the starting capital on, and its simple returns per bar."""
    curve = np.hstack([np.full((len(equity), 1), sweep.capital), equity])
    return curve, np.diff(curve, axis=1) / curve[:, :-1]


def grid_metrics(sweep: Sweep, equity: np.ndarray, stats: np.ndarray) -> list[dict[str, Any]]:
    """Per cell: its parameters and the metrics ``metrics.summary`` reports, computed for all
    cells at once (returns per bar from the starting capital)."""
    c = sweep.conventions
    curve, returns = curves(sweep, equity)
    years = returns.shape[1] / c.periods_per_year
    sharpe = path_sharpe(returns, c)
    drawdown = path_drawdowns(returns).min(axis=1) if returns.shape[1] else np.zeros(len(equity))
    turnover = np.full(len(equity), np.nan)
    if years:
        turnover = stats[:, k.TRADED] / curve.mean(axis=1) / years
    out = []
    for i, cell in enumerate(sweep.cells):
        final = float(equity[i, -1]) if equity.shape[1] else sweep.capital
        row = {key: cell[key] for key in ("fast", "slow", "threshold") if key in cell}
        if sweep.grid.sizing != "equal":
            row["size"] = cell["size"]
        if sweep.grid.sizing == "vol-target":
            row["max_weight"] = cell["cap"]
        row |= {
            "total_return": final / sweep.capital - 1,
            "sharpe": float(sharpe[i]),
            "max_drawdown": float(drawdown[i]),
            "turnover": float(turnover[i]),
            "fills": int(stats[i, k.FILLS]),
            "orders": int(stats[i, k.ORDERS]),
            "denied": int(stats[i, k.DENIED]),
            "fees": round(float(stats[i, k.FEES]), 2),
            "final_equity": round(final, 2),
            "halted": bool(stats[i, k.STATE] == k.HALTED),
            "approximate": bool(stats[i, k.OVERLAP] > 0),
        }
        out.append(row)
    return out


def deflated_best(sweep: Sweep, equity: np.ndarray, best: int) -> DeflatedSharpe | None:
    """The best cell's deflated Sharpe ratio: its per-bar Sharpe against what the best of this
    many unskilled cells would show, the trials' variance being the grid's own."""
    _, returns = curves(sweep, equity)
    per_bar = path_sharpe(returns, PER_PERIOD)
    moved = per_bar[np.isfinite(per_bar)]
    variance = float(np.var(moved, ddof=1)) if len(moved) > 1 else None
    try:
        return deflated_sharpe_ratio(returns[best], len(sweep.cells), variance)
    except ValueError:  # too few bars, or moments that give no Sharpe variance
        return None


def run_sweep(sweep: Sweep) -> SweepResult:
    """The grid traded and measured; the best cell is the one with the highest Sharpe. The
    kernel is compiled (or loaded from numba's cache) by a first cell on its own, so that
    ``seconds`` is the grid's trading time and ``compile_seconds`` the one-off cost."""
    started = time.perf_counter()
    sweep.run(cells=1)
    compiled = time.perf_counter()
    equity, stats = sweep.run()
    seconds = time.perf_counter() - compiled
    cells = grid_metrics(sweep, equity, stats)
    sharpe = np.array([c["sharpe"] for c in cells])
    best = int(np.argmax(np.nan_to_num(sharpe, nan=-np.inf)))
    return SweepResult(
        cells, best, deflated_best(sweep, equity, best), equity.shape[1],
        len(sweep.market.symbols), seconds, equity, compiled - started,
    )  # fmt: skip
