"""The demo's options: a synthetic underlying and a few listed European options priced by
QuantLib on it (``quant.option_chain``), loaded into a scratch database; one option's greeks as
the runtime computes them (the volatility implied by its close) next to QuantLib's at the
generating volatility; then ten calls bought and held to expiry through the engine, once
delta-hedged by the overlay and once not, with their P&L, its volatility, the final delta and
the settlement at expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from quant.option_chain import ChainMarket, chain_closes, gbm_closes, option_symbol, strip
from quant.options import MarketInputs, OptionContract, price_option
from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.options import OptionDesk, OptionMarket
from trading_runtime.runs import RunReport, run
from trading_runtime.settings import RuntimeSettings
from warehouse.db import recreate_database
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, Instrument, RawBars
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

SCRATCH = "qtis_demo_options"  # never mixed with the warehouse's equities
UNDERLYING = "SYN"
VOLATILITY, RATE = 0.20, 0.03
# a hedged options book is short stock: shorting on; notional checks as for equities
OPTION_LIMITS = {"allow_short": True}


def option_bars(
    underlying: pd.Series,
    symbol: str,
    contracts: list[OptionContract],
    market: ChainMarket,
    volume: float = 1e7,
) -> RawBars:
    """Bars of the underlying ``symbol`` (closes ``underlying`` by date) and of each contract
    (its model close while it is worth something; open = previous close), with instruments:
    the underlying an equity, each option class ``option``, multiplier, terms, delisted the day
    after its expiry."""
    closes = chain_closes(underlying, contracts, market)
    closes.insert(0, symbol, underlying.to_numpy())
    frames = []
    for name in closes.columns:
        close = closes[name].where(closes[name] > 0).dropna()  # worthless: no trade, no bar
        opens = close.shift(1).fillna(close)
        both = pd.concat([opens, close], axis=1)
        frames.append(
            pd.DataFrame({
                "symbol": name, "ts": close.index.tz_localize("UTC"),
                "open": opens.to_numpy(), "high": both.max(axis=1).to_numpy(),
                "low": both.min(axis=1).to_numpy(), "close": close.to_numpy(),
                "volume": volume if name == symbol else volume / 100,
            })
        )  # fmt: skip
    instruments = [Instrument(symbol, sector="synthetic")] + [
        Instrument(
            option_symbol(c), sector="options", asset_class="option", multiplier=c.multiplier,
            underlying=c.underlying, expiry=c.expiry, strike=c.strike, option_right=c.right,
            exercise_style=c.style, delisted_at=c.expiry + timedelta(days=1),
        )
        for c in contracts
    ]  # fmt: skip
    return RawBars(pd.concat(frames, ignore_index=True), "hand", "synthetic options", instruments)


@dataclass(frozen=True)
class Scenario:
    """The demo's market: the underlying's closes, a strip of calls and puts around the money
    expiring on ``expiry``, and the call the strategies hold."""

    underlying: pd.Series
    contracts: list[OptionContract]
    held: OptionContract
    market: ChainMarket

    @classmethod
    def build(cls, seed: int = 14) -> Scenario:
        closes = gbm_closes("2024-01-02", 75, spot=100.0, volatility=VOLATILITY, seed=seed)
        expiry = date(2024, 3, 15)
        contracts = strip(UNDERLYING, expiry, [95.0, 100.0, 105.0])
        held = next(c for c in contracts if c.right == "call" and c.strike == 100.0)
        return cls(closes, contracts, held, ChainMarket(VOLATILITY, RATE))

    def bars(self) -> RawBars:
        return option_bars(self.underlying, UNDERLYING, self.contracts, self.market)


def demo_settings() -> RuntimeSettings:
    """The environment's runtime settings with every re-hedge sent (QTIS_TRADE_MIN_TRADE 0)
    and the chain's rate."""
    return RuntimeSettings(min_trade=0.0, option_rate=RATE)


def hedged_runs(
    url: str, scenario: Scenario, band: float, settings: RuntimeSettings, tag: str = "demo-options"
) -> dict[str, RunReport]:
    """Ten of ``scenario.held`` bought on the first bar and held to expiry, delta-hedged
    within ``band`` shares, and the same with a band no delta reaches (the overlay then never
    trades: the unhedged book). No costs."""
    symbols = [UNDERLYING, option_symbol(scenario.held)]
    out = {}
    for name, width in (("hedged", band), ("unhedged", 1e12)):
        strategy = StrategyConfig(
            name=name, signal="buy-and-hold", sizing="fixed", quantity=10, limits=OPTION_LIMITS,
            delta_hedge={"underlying": UNDERLYING, "band": width},
        )  # fmt: skip
        config = RunConfig(stream=f"{tag}-{name}", symbols=symbols, strategies=[strategy],
                           warmup_bars=0, free_costs=True)  # fmt: skip
        out[name] = run(url, config, settings=settings)
    return out


def daily_pnl(report: RunReport, account: str) -> np.ndarray:
    """The account's equity change bar by bar."""
    return np.diff([point["equity"][account] for point in report.equity_curve])


def settlements(url: str, stream: str) -> list[ev.OptionSettled]:
    journal = Journal(url, stream)
    try:
        return list(journal.read(types=[ev.OPTION_SETTLED]))
    finally:
        journal.close()


def _greeks_table(scenario: Scenario, day: int, market: OptionMarket) -> Table:
    """One option's close, implied volatility and greeks as the runtime has them next to
    QuantLib's at the volatility the close was generated with."""
    bars = scenario.bars()
    symbol, contract = option_symbol(scenario.held), scenario.held
    ts = scenario.underlying.index[day]
    spot = float(scenario.underlying.iloc[day])
    close = float(chain_closes(scenario.underlying, [contract], scenario.market)[symbol].iloc[day])
    instruments = {i.symbol: i for i in bars.instruments}
    desk = OptionDesk(instruments, [UNDERLYING, symbol], market)
    runtime = desk.value(symbol, close, spot, ts.date())
    truth = price_option(contract, MarketInputs(spot, VOLATILITY, RATE, ts.date()))
    table = Table("", "runtime (implied from the close)", "QuantLib (generating vol)",
                  title=f"{symbol} on {ts.date()}, {UNDERLYING} at {spot:.2f}")  # fmt: skip
    table.add_row("volatility", f"{runtime.volatility:.10f}", f"{VOLATILITY:.10f}")
    for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
        table.add_row(name, f"{getattr(runtime.greeks, name):.10f}", f"{getattr(truth, name):.10f}")
    return table


def delta_path(
    url: str, stream: str, account: str, instruments: dict[str, Instrument], market: OptionMarket
) -> pd.Series:
    """The account's delta (units of the underlying) at every bar's close, from the journal:
    the book replayed event by event, its options valued at the bar's marks."""
    symbols = sorted({s for s, i in instruments.items() if i.asset_class == "option"}
                     | {UNDERLYING})  # fmt: skip
    desk = OptionDesk(instruments, symbols, market)
    book, path = Book(), {}
    journal = Journal(url, stream)
    try:
        for event in journal.read():
            book.apply(event)
            if isinstance(event, ev.BarClosed):
                held = desk.holdings(book, account, working=False)
                day = datetime.fromisoformat(event.ts).date()
                greeks = desk.greeks(held, book.marks, day=day)
                path[pd.Timestamp(event.ts)] = greeks.delta_units.get(UNDERLYING, 0.0)
    finally:
        journal.close()
    return pd.Series(path, name="delta")


def show_options(console: Console, settings: WarehouseSettings) -> None:
    scenario, runtime = Scenario.build(), demo_settings()
    console.print(_greeks_table(scenario, 10, OptionMarket.of(runtime)))
    band = 25.0
    with console.status("options: ten calls held to expiry, delta-hedged and not"):
        url = recreate_database(SCRATCH, settings)
        migrate(url)
        ingest(FrameProvider(scenario.bars()), url, settings)
        runs = hedged_runs(url, scenario, band, runtime)
    instruments = {i.symbol: i for i in scenario.bars().instruments}
    table = Table("book", "P&L", "daily P&L sd", "fills", "max |delta| (shares)",
                  "delta before expiry", title=f"10 x {option_symbol(scenario.held)} held to"
                  f" expiry (band {band:g} shares; database {SCRATCH})")  # fmt: skip
    for name, report in runs.items():
        pnl = daily_pnl(report, name)
        path = delta_path(url, report.stream, name, instruments, OptionMarket.of(runtime))
        before = path[path.index.date < scenario.held.expiry]
        table.add_row(name, f"{pnl.sum():,.2f}", f"{pnl.std(ddof=1):,.2f}",
                      str(len(report.fills)), f"{before.abs().max():,.1f}",
                      f"{before.iloc[-1]:,.1f}")  # fmt: skip
    console.print(table)
    for event in settlements(url, runs["hedged"].stream):
        outcome = "exercised" if event.exercised else "expired worthless"
        console.print(
            f"  {event.ts[:10]}: {event.quantity:g} {event.symbol} {outcome} at {UNDERLYING}"
            f" {event.underlying_price:.2f}: {event.settlement_price:.4f} a share, cash"
            f" {event.quantity * 100 * event.settlement_price:,.2f}",
            highlight=False,
        )
