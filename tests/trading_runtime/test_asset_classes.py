"""Attribution by asset class: a book of a stock and a rolled futures position, analyzed from
its journal; the classes' P&L adds up to the change of equity, each class's to its own
account's, and exposure is the class's notional over equity."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from demo.futures import FUTURES_LIMITS, chain_bars
from quant.futures_chain import synthetic_chain
from tests.support.bars import load_bars
from tests.support.cointegrated import as_bars, factor_logs
from tests.support.db import copy_database
from trading_runtime.analytics.analysis import analyze
from trading_runtime.analytics.conventions import conventions
from trading_runtime.analytics.tearsheet import asset_class_rows
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import run
from trading_runtime.settings import RiskReportSettings

CHAIN = synthetic_chain("ES", "2022-01-03", bars=300, seed=4)


@pytest.fixture
def mixed_market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, chain_bars(CHAIN))
    stock = factor_logs(300, np.full((300, 1), 1.0))[:, 1:]
    load_bars(url, as_bars(stock, ["STK"], start="2022-01-03"))
    return url


def test_the_classes_add_up_to_the_book_and_to_their_accounts(mixed_market):
    strategies = [
        StrategyConfig(name="stocks", signal="buy-and-hold", sizing="fixed", quantity=1000,
                       capital=300_000),
        StrategyConfig(name="futures", signal="buy-and-hold", sizing="fixed", quantity=1,
                       capital=300_000, limits=FUTURES_LIMITS),
    ]  # fmt: skip
    config = RunConfig(stream="mixed", symbols=["STK", *CHAIN.symbols], strategies=strategies,
                       start=date(2022, 2, 1), warmup_bars=0)  # fmt: skip
    report = run(mixed_market, config)
    analysis = analyze(mixed_market, "mixed", conventions(periods_per_year=252),
                       RiskReportSettings())  # fmt: skip
    total = analysis.asset_classes["total"]
    assert set(total) == {"equity", "future"}
    final = report.equity_curve[-1]["equity"]
    change = sum(final.values()) - 600_000
    assert sum(row["pnl"] for row in total.values()) == pytest.approx(change, abs=1e-6)
    for account, classes in (("stocks", ["equity"]), ("futures", ["equity", "future"])):
        own = analysis.asset_classes[account]  # the futures book also buys 1 share of STK
        assert list(own) == classes
        pnl = sum(row["pnl"] for row in own.values())
        assert pnl == pytest.approx(final[account] - 300_000, abs=1e-6)
        for row in own.values():
            assert row["contribution"] == pytest.approx(row["pnl"] / 300_000)
    parts = [analysis.asset_classes[a]["equity"]["pnl"] for a in ("stocks", "futures")]
    assert total["equity"]["pnl"] == pytest.approx(sum(parts), abs=1e-6)
    assert {"ESH22", "ESM22", "ESU22"} <= set(total["future"]["symbols"])  # rolled through
    futures = analysis.holdings["futures"]
    held = [s for s in futures.values.columns if s in CHAIN.symbols]
    notional = futures.values[held].abs().sum(axis=1) / futures.equity
    assert analysis.asset_classes["futures"]["future"]["gross"] == pytest.approx(notional.mean())
    columns, rows = asset_class_rows(analysis)
    assert columns[0] == "P&L" and [label for label, _ in rows] == ["equity", "future"]
