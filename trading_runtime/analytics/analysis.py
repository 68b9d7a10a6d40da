"""Everything a tear sheet shows about one stream, read from its journal and ``market.bars``:
the run's metrics with bootstrap intervals, execution quality, holdings over time, the risk of
its final holdings and an equal-weight buy-and-hold benchmark of the same universe over the
same bars."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from quant.bootstrap import bootstrap_intervals
from quant.conventions import Conventions
from quant.intervals import Interval
from quant.performance import alpha_beta, curve_returns, performance
from trading_runtime.analytics import execution, positions
from trading_runtime.analytics.asset_classes import by_asset_class
from trading_runtime.analytics.positions import Holdings
from trading_runtime.analytics.risk_report import risk_report
from trading_runtime.instruments import load_instruments
from trading_runtime.journal import Journal
from trading_runtime.options import OptionMarket
from trading_runtime.runs import report
from trading_runtime.settings import RiskReportSettings
from warehouse.reads import read_bars


@dataclass
class Analysis:
    stream: str
    conventions: Conventions
    metrics: dict[str, dict[str, Any]]  # per account and total: summary + exposure + alpha/beta
    intervals: dict[str, dict[str, Interval]]
    execution: dict[str, dict[str, float]]
    holdings: dict[str, Holdings]
    returns: pd.DataFrame  # per bar, a column per account and total
    benchmark: pd.Series  # per-bar returns of the benchmark on the same bars
    benchmark_name: str
    benchmark_metrics: dict[str, float]
    risk: dict[str, Any]  # of the final holdings: VaR/ES, stress, shocks, sectors, correlation
    asset_classes: dict[str, dict[str, dict[str, Any]]]  # account -> class -> P&L, exposure

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (intervals as value/low/high; NaN stays float: pass through ``plain``)."""
        return {
            "stream": self.stream,
            "conventions": asdict(self.conventions),
            "metrics": self.metrics,
            "intervals": self.intervals,
            "execution": self.execution,
            "benchmark": {"name": self.benchmark_name, "metrics": self.benchmark_metrics},
            "risk": self.risk,
            "asset_classes": self.asset_classes,
        }


def analyze(
    url: str,
    stream: str,
    conventions: Conventions,
    risk: RiskReportSettings,
    benchmark: pd.Series | None = None,
    option_market: OptionMarket | None = None,
) -> Analysis:
    """The analysis of ``stream``. ``benchmark``: per-bar returns indexed by bar time (bars it
    lacks count as 0); default the equal-weight buy-and-hold of the run's universe. The entry
    point builds ``conventions`` (QTIS_ANALYTICS_*, with the engine's bars per year,
    QTIS_TRADE_BARS_PER_YEAR, the figure the run's own metrics use) and ``risk``
    (QTIS_REPORT_*), and ``option_market`` (``OptionMarket.of`` the RuntimeSettings) for the
    greeks of options held."""
    c = conventions
    run = report(url, stream, c)
    journal = Journal(url, stream)
    try:
        events = list(journal.read(types=sorted({*positions.EVENTS, *execution.EVENTS})))
    finally:
        journal.close()
    index = pd.DatetimeIndex([pd.Timestamp(p["ts"]) for p in run.equity_curve], name="ts")
    returns = pd.DataFrame(
        {
            name: curve_returns(
                sum(run.book.accounts[a].initial for a in _members(run.book, name)),
                [sum(p["equity"][a] for a in _members(run.book, name)) for p in run.equity_curve],
            )
            for name in run.metrics
        },
        index=index,
    )
    bars = _bars(url, run.book.config.get("symbols"), index)
    name = "given benchmark"
    if benchmark is None:
        benchmark, name = equal_weight(bars, index), "equal-weight buy-and-hold of the universe"
    else:
        benchmark = benchmark.reindex(index).fillna(0.0)
    opens = {}
    if not bars.empty:
        opens = {(s, t): o for s, t, o in bars[["symbol", "ts", "open"]].itertuples(index=False)}
    held = positions.holdings(events)
    metrics, intervals = {}, {}
    for account in run.metrics:
        alpha, beta = alpha_beta(returns[account].to_numpy(), benchmark.to_numpy(), c)
        exposure = held[account].summary() if account in held else {}
        metrics[account] = run.metrics[account] | exposure | {"alpha": alpha, "beta": beta}
        intervals[account] = bootstrap_intervals(returns[account].to_numpy(), c)
    portfolio, classes = {}, {}
    if "total" in held:
        universe = run.book.config.get("symbols")
        instruments = _instruments(url, universe)
        history = _asset_returns(url, universe, index)
        spots = {}
        if not bars.empty:  # the last close of each symbol: an option's underlying may be unheld
            last = bars.sort_values("ts").groupby("symbol")["close"].last()
            spots = {str(k): float(v) for k, v in last.items()}
        portfolio = risk_report(held["total"], history, instruments, risk,
                                option_market=option_market, spots=spots)  # fmt: skip
        for name, h in held.items():
            initial = sum(run.book.accounts[a].initial for a in _members(run.book, name))
            classes[name] = by_asset_class(h, instruments, initial)
    return Analysis(
        stream,
        c,
        metrics,
        intervals,
        execution.execution_quality(events, opens),
        held,
        returns,
        benchmark,
        name,
        performance(benchmark.to_numpy(), conventions=c),
        portfolio,
        classes,
    )


def _members(book, name: str) -> list[str]:
    return list(book.accounts) if name == "total" else [name]


def _instruments(url: str, symbols: list[str] | None):
    return load_instruments(url, symbols)


def _bars(
    url: str, symbols: list[str] | None, index: pd.DatetimeIndex, history: bool = False
) -> pd.DataFrame:
    """The universe's bars over the run's bars (``history``: from the first there is)."""
    if index.empty:
        return pd.DataFrame(columns=["symbol", "ts", "open", "close"])
    universe = sorted(_instruments(url, symbols))
    start = None if history else index[0].to_pydatetime()
    end = index[-1].to_pydatetime() + timedelta(microseconds=1)
    frame = read_bars(url, universe, start, end).to_pandas()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def _asset_returns(url: str, symbols: list[str] | None, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Close-to-close simple returns of the universe, a column per symbol, through the run's
    last bar: the history the final holdings' risk is measured on."""
    bars = _bars(url, symbols, index, history=True)
    if bars.empty:
        return pd.DataFrame()
    closes = bars.pivot(index="ts", columns="symbol", values="close")
    return closes.pct_change(fill_method=None).iloc[1:]


def equal_weight(bars: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    """Per-bar returns of equal amounts bought at the first bar's close in every symbol that
    has one, then held (a symbol without a later bar keeps its last close)."""
    if bars.empty or index.empty:
        return pd.Series(0.0, index=index, name="benchmark")
    closes = bars.pivot(index="ts", columns="symbol", values="close").reindex(index).ffill()
    held = closes.columns[closes.iloc[0].notna().to_numpy()]
    if held.empty:
        return pd.Series(0.0, index=index, name="benchmark")
    value = (closes[held] / closes[held].iloc[0]).mean(axis=1).to_numpy()
    return pd.Series(np.r_[0.0, value[1:] / value[:-1] - 1], index=index, name="benchmark")
