"""The demo's multi-currency account: a euro stock bought and held in a dollar account, with
EURUSD as bars, in a scratch database. Each fill journals the rate it converted at, equity
marks at each bar's rate, and the move of the euro alone shows in the dollar P&L."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trading_runtime import events as ev
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import run
from trading_runtime.settings import RuntimeSettings
from warehouse.db import recreate_database
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, Instrument, RawBars
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

SCRATCH = "qtis_demo_currencies"
STOCK, PAIR = "SAPX", "EURUSD"  # a euro stock (synthetic) and the dollars one euro buys
BARS = 120


def fx_bars(seed: int = 5) -> RawBars:
    """``BARS`` business days of a euro stock (1% daily moves from 120 EUR) and of EURUSD
    (0.5% daily moves from 1.08), opens at the previous close."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-02", periods=BARS).tz_localize("UTC")
    closes = {
        STOCK: 120 * np.exp(np.cumsum(rng.normal(0, 0.01, BARS))),
        PAIR: 1.08 * np.exp(np.cumsum(rng.normal(0, 0.005, BARS))),
    }
    frames = []
    for symbol, close in closes.items():
        opens = np.concatenate([[close[0]], close[:-1]])
        frames.append(pd.DataFrame({
            "symbol": symbol, "ts": days, "open": opens, "high": np.maximum(opens, close),
            "low": np.minimum(opens, close), "close": close, "volume": 1e7,
        }))  # fmt: skip
    instruments = [
        Instrument(STOCK, sector="software", currency="EUR", exchange="XETR", tick_size=0.01),
        Instrument(PAIR, asset_class="fx", currency="USD", tick_size=0.0001),
    ]
    return RawBars(pd.concat(frames, ignore_index=True), "hand", "synthetic", instruments)


def show_currencies(console: Console, settings: WarehouseSettings) -> None:
    with console.status("multi-currency: a euro stock in a dollar account"):
        url = recreate_database(SCRATCH, settings)
        migrate(url)
        ingest(FrameProvider(fx_bars()), url, settings)
        strategy = StrategyConfig(name="eur", signal="buy-and-hold", sizing="fixed",
                                  quantity=300, capital=100_000)  # fmt: skip
        config = RunConfig(stream="demo-eur", symbols=[STOCK, PAIR], strategies=[strategy],
                           warmup_bars=0)  # fmt: skip
        runtime = RuntimeSettings(base_currency="USD")
        report = run(url, config, settings=runtime)
        journal = Journal(url, "demo-eur")
        try:
            fills = [e.fill for e in journal.read(types=[ev.ORDER_FILLED])]
            closes = [e for e in journal.read(types=[ev.BAR_CLOSED])]
        finally:
            journal.close()
    fill, last = fills[0], closes[-1]
    equity = report.equity_curve[-1]["equity"]["eur"]
    local = fill.quantity * (last.marks[STOCK] - fill.price)  # the stock's move, in euros
    table = Table(
        "", "value", title=f"{STOCK} (EUR) held in a USD account, {BARS} bars",
        caption=f"the dollar P&L is the stock's move and the euro's: {PAIR} from"
        f" {fill.fx_rate:.4f} to {last.fx['EUR']:.4f}; database {SCRATCH}",
    )  # fmt: skip
    table.add_row("bought", f"{fill.quantity:g} at {fill.price:.2f} EUR, fee {fill.fee:.2f} EUR")
    table.add_row("journaled rate", f"{fill.fx_rate:.4f} USD per EUR (the fill's {PAIR} open)")
    table.add_row("cash paid", f"{-fill.cash_flow:,.2f} USD")
    table.add_row("last marks", f"{last.marks[STOCK]:.2f} EUR at {last.fx['EUR']:.4f}")
    table.add_row("P&L", f"{equity - 100_000:,.2f} USD (the stock alone: {local:,.2f} EUR)")
    console.print(table)
