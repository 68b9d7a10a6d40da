"""The demo's strategies beyond long-only: pairs chosen by cointegration, walked forward over the
bundled universe (each window warms up on the bars before it, nothing fitted on later bars), and
a buy-and-hold book beta-hedged with one of its symbols, next to the same book unhedged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
from rich.console import Console
from rich.table import Table

from cli.render.format import num, pct
from cli.render.trading import print_walk_forward
from quant.performance import alpha_beta
from trading_runtime.analytics.conventions import conventions
from trading_runtime.config import HedgeConfig, PairsConfig, RunConfig, StrategyConfig
from trading_runtime.runs import run
from trading_runtime.settings import RuntimeSettings, WalkForwardSettings
from trading_runtime.walkforward import walk_forward
from warehouse.reads import read_bars

PAIRS = StrategyConfig(
    name="pairs",
    signal="pairs",
    sizing="equal",
    limits={"allow_short": True},
    pairs=PairsConfig(formation=250, reselect=63, entry_z=2.0, exit_z=0.5),
)
HEDGE = "MSFT"  # the bundled universe has no index: one of its names stands in for the market
BOOK = ["AAPL", "GOOG", "IBM", HEDGE]
HEDGE_LIMITS = {"allow_short": True, "max_gross_exposure": 2.0, "max_symbol_weight": 1.0,
                "max_sector_weight": 2.0}  # fmt: skip
START = date(2010, 1, 4)


def show_strategies(console: Console, url: str) -> None:
    _pairs(console, url)
    _hedged(console, url)


def _pairs(console: Console, url: str) -> None:
    stream = f"demo-pairs-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    config = RunConfig(stream=stream, strategies=[PAIRS])
    settings = WalkForwardSettings(windows=6, train_bars=250, test_bars=126, mode="rolling")
    runtime = RuntimeSettings()
    with console.status("pairs: cointegration re-tested every 63 bars, walked forward"):
        found = walk_forward(
            url, config, _no_model, settings, runtime,
            conventions(periods_per_year=runtime.bars_per_year),
        )  # fmt: skip
    console.print("[bold]Pairs trading[/] (signal pairs: Engle-Granger on 250 bars, z 2.0/0.5)")
    print_walk_forward(found, console)


def _no_model(symbols, horizon):
    raise AssertionError("a rules walk-forward asks for no model")


def _hedged(console: Console, url: str) -> None:
    """The same buy-and-hold book with its hedge and with the hedge never placed (a band no
    drift reaches), from ``START``: the same names and sizes, so the hedge is the difference."""
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
    books = [
        StrategyConfig(
            name=name,
            signal="buy-and-hold",
            sizing="equal",
            limits=HEDGE_LIMITS,
            hedge=HedgeConfig(symbol=HEDGE, window=63, band=band),
        )
        for name, band in (("unhedged", 1e9), ("hedged", 0.1))
    ]
    table = Table(
        "book", "return", "volatility", "Sharpe", "max DD", f"beta to {HEDGE}",
        f"{HEDGE} fills", title=f"Beta hedging: AAPL, GOOG, IBM bought and held from {START}",
        caption=f"hedged: {HEDGE} sold so that the book's 63-bar beta to it stays within 0.1"
        " of 0 (the bundled universe has no index: one of its names stands in)",
    )  # fmt: skip
    with console.status("beta hedging: the book with and without its hedge"):
        reports = [
            run(
                url,
                RunConfig(
                    stream=f"demo-{s.name}-{stamp}", symbols=BOOK, strategies=[s], start=START
                ),
            )
            for s in books
        ]
        market = _returns(url, reports[0].equity_curve)
    for strategy, report in zip(books, reports, strict=True):
        m = report.metrics["total"]
        equity = pd.Series([p["equity"][strategy.name] for p in report.equity_curve],
                           index=market.index)  # fmt: skip
        beta = alpha_beta(equity.pct_change().to_numpy(), market.to_numpy())[1]
        fills = sum(f["symbol"] == HEDGE for f in report.fills)
        table.add_row(strategy.name, pct(m["total_return"]), pct(m["volatility"]),
                      num(m["sharpe"]), pct(m["max_drawdown"]), num(beta), str(fills))  # fmt: skip
    console.print(table)


def _returns(url: str, curve: list[dict]) -> pd.Series:
    """The hedge instrument's close-to-close returns on the equity curve's bars."""
    index = pd.DatetimeIndex([pd.Timestamp(p["ts"]) for p in curve])
    end = index[-1].to_pydatetime() + timedelta(microseconds=1)
    bars = read_bars(url, [HEDGE], index[0].to_pydatetime(), end).to_pandas()
    close = pd.Series(bars["close"].to_numpy(float), pd.to_datetime(bars["ts"], utc=True))
    return close.reindex(index).pct_change()
