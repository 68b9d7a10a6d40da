"""The demo's futures: a synthetic quarterly ES chain, its rolls by rule and its back-adjusted
continuous series (what features and research read), then a backtest in a scratch database
where the engine holds the root in one contract, rolls it five trading days before expiry as
journaled orders, and checks each order's initial margin against the free cash."""

from __future__ import annotations

from datetime import date

import pandas as pd
from rich.console import Console
from rich.table import Table

from quant.futures import ContractChain, RollRule, continuous, roll_schedule
from quant.futures_chain import synthetic_chain
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import run
from warehouse.db import recreate_database
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, Instrument, RawBars
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

SCRATCH = "qtis_demo_futures"  # the chain never mixes with the warehouse's equities
# a futures book's notional is many times its equity: the equity-style notional checks are off,
# the margin check (and the drawdown limits) are what bind
FUTURES_LIMITS = {"max_sector_weight": None, "max_symbol_weight": None,
                  "max_gross_exposure": None, "max_net_exposure": None,
                  "max_position_notional": None, "max_order_notional": None}  # fmt: skip


def chain_bars(chain: ContractChain) -> RawBars:
    """Each contract's bars where it trades (open = previous close), and its instrument:
    class ``future``, the root as ``underlying``, expiry, multiplier, tick and margin."""
    frames = []
    for contract in chain.contracts:
        close = chain.close[contract.symbol].dropna()
        opens = close.shift(1).fillna(close)
        both = pd.concat([opens, close], axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": contract.symbol,
                    "ts": close.index.tz_localize("UTC"),
                    "open": opens.to_numpy(),
                    "high": both.max(axis=1).to_numpy(),
                    "low": both.min(axis=1).to_numpy(),
                    "close": close.to_numpy(),
                    "volume": chain.volume[contract.symbol].reindex(close.index).to_numpy(),
                }
            )
        )
    instruments = [
        Instrument(
            c.symbol,
            sector="index futures",
            asset_class="future",
            multiplier=c.multiplier,
            tick_size=c.tick_size,
            initial_margin=c.initial_margin,
            underlying=c.root,
            expiry=c.expiry,
            exchange="XCME",
        )
        for c in chain.contracts
    ]
    return RawBars(pd.concat(frames, ignore_index=True), "hand", "synthetic chain", instruments)


def show_futures(console: Console, settings: WarehouseSettings) -> None:
    chain = synthetic_chain("ES", "2022-01-03", bars=300, seed=4)
    rolls = {by: roll_schedule(chain, RollRule(by=by)) for by in ("expiry", "volume")}
    series = {m: continuous(chain, RollRule(), m) for m in ("ratio", "difference")}
    table = Table("roll", "5 days before expiry", "volume switch", title="ES rolls (synthetic)")
    for k, (a, b) in enumerate(zip(rolls["expiry"], rolls["volume"], strict=False)):
        table.add_row(f"{a.from_symbol} -> {a.to_symbol}", str(a.date.date()), str(b.date.date()))
        if k == 3:
            break
    console.print(table)
    ratio, diff = series["ratio"], series["difference"]
    held = ratio.raw.pct_change(fill_method=None)[ratio.held == ratio.held.shift()]
    gap = (ratio.returns()[held.index] - held).abs().max()
    console.print(
        f"  back-adjusted ES: first close {ratio.prices.iloc[0]:,.2f} (ratio) /"
        f" {diff.prices.iloc[0]:,.2f} (difference) vs raw {ratio.raw.iloc[0]:,.2f}; last bar"
        f" unchanged at {ratio.prices.iloc[-1]:,.2f}; returns vs the held contract's within"
        f" {gap:.1e}",
        highlight=False,
    )
    with console.status("futures: the root held and rolled by the engine, margin checked"):
        url = recreate_database(SCRATCH, settings)
        migrate(url)
        ingest(FrameProvider(chain_bars(chain)), url, settings)
        strategy = StrategyConfig(name="es", signal="buy-and-hold", sizing="fixed", quantity=1,
                                  capital=250_000, roll_days=5, limits=FUTURES_LIMITS)  # fmt: skip
        report = run(url, RunConfig(stream="demo-es", symbols=chain.symbols,
                                    strategies=[strategy], start=date(2022, 2, 1)))  # fmt: skip
    m = report.metrics["total"]
    moves = ", ".join(
        f"{f['ts'][:10]} {f['side']} {f['quantity']:g} {f['symbol']}" for f in report.fills
    )
    console.print(
        f"  engine (1 contract, 250,000 capital, database {SCRATCH}): {moves}; return"
        f" {m['total_return']:.2%}, max drawdown {m['max_drawdown']:.2%}, denied"
        f" {m['denied']}",
        highlight=False,
        soft_wrap=True,
    )
