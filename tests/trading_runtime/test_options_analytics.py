"""Options in the analytics: a call held to its cash settlement is attributed to the option
class with the settlement's cash (the classes add up to the change of equity), and a book
still holding it reports its greeks - the runtime's, from QuantLib - in the risk report and
the tear sheet's greeks table."""

from __future__ import annotations

from datetime import date

import pytest

from demo.options import OPTION_LIMITS, RATE, UNDERLYING, VOLATILITY, Scenario, demo_settings
from quant.option_chain import option_symbol
from quant.options import MarketInputs, price_option
from tests.support.bars import load_bars
from tests.support.db import copy_database
from trading_runtime.analytics.analysis import analyze
from trading_runtime.analytics.conventions import conventions
from trading_runtime.analytics.tearsheet import greeks_table
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.options import OptionMarket
from trading_runtime.runs import run
from trading_runtime.settings import RiskReportSettings

SCENARIO = Scenario.build()
CALL = option_symbol(SCENARIO.held)


@pytest.fixture(scope="module")
def market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, SCENARIO.bars())
    return url


def held_calls(url: str, stream: str, end: date | None):
    strategy = StrategyConfig(name="calls", signal="buy-and-hold", sizing="fixed", quantity=10,
                              limits=OPTION_LIMITS,
                              delta_hedge={"underlying": UNDERLYING, "band": 1e12})  # fmt: skip
    config = RunConfig(stream=stream, symbols=[UNDERLYING, CALL], strategies=[strategy],
                       end=end, warmup_bars=0, free_costs=True)  # fmt: skip
    settings = demo_settings()
    report = run(url, config, settings=settings)
    analysis = analyze(url, stream, conventions(periods_per_year=252), RiskReportSettings(),
                       option_market=OptionMarket.of(settings))  # fmt: skip
    return report, analysis


def test_a_settled_call_is_attributed_with_its_settlement(market):
    report, analysis = held_calls(market, "settled", None)
    assert report.book.accounts["calls"].positions[CALL].quantity == 0  # settled at expiry
    classes = analysis.asset_classes["total"]
    change = report.equity_curve[-1]["equity"]["calls"] - report.metrics["calls"]["initial"]
    assert sum(row["pnl"] for row in classes.values()) == pytest.approx(change, abs=1e-6)
    assert classes["option"]["pnl"] == pytest.approx(change, abs=1e-6)  # the calls did it all
    assert analysis.holdings["calls"].quantities[CALL].iloc[-1] == 0


def test_greeks_of_a_held_call_in_the_report_and_the_tear_sheet(market):
    end = date(2024, 2, 15)
    _, analysis = held_calls(market, "held", end)
    greeks = analysis.risk["greeks"]
    as_of = date.fromisoformat(greeks["as_of"][:10])
    spot = float(SCENARIO.underlying[SCENARIO.underlying.index.date == as_of].iloc[0])
    expected = price_option(SCENARIO.held, MarketInputs(spot, VOLATILITY, RATE, as_of))
    row = greeks["by_underlying"][UNDERLYING]
    assert row["delta_units"] == pytest.approx(10 * 100 * expected.delta, abs=1e-6)
    assert row["delta"] == pytest.approx(10 * 100 * expected.delta * spot, rel=1e-8)
    assert greeks["total"]["delta"] == pytest.approx(row["delta"])
    title, (columns, rows) = greeks_table(greeks)
    assert "greeks" in title.lower() and columns[0] == "delta (units)"
    assert [label for label, _ in rows] == [UNDERLYING, "total"]
