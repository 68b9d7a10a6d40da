"""The demo's parts for strategies and asset classes, run as `make demo` runs them: pairs walked
forward and the hedged book on the bundled sample, the VaR backtests, and the futures, options
and currency parts in their scratch databases."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from demo.currencies import show_currencies
from demo.futures import show_futures
from demo.options import show_options
from demo.risk import show_var_backtests
from demo.strategies import show_strategies
from trading_runtime.settings import RiskReportSettings
from warehouse.settings import WarehouseSettings


def printed(render) -> str:
    out = io.StringIO()
    render(Console(file=out, width=160))
    return " ".join(out.getvalue().split())


@pytest.mark.slow
def test_the_bundled_sample_parts(market):
    text = printed(lambda c: show_strategies(c, market))
    assert "rolling, rules" in text and "6 of 6 windows traded" in text
    assert "hedged" in text and "beta to MSFT" in text
    text = printed(lambda c: show_var_backtests(c, market, RiskReportSettings()))
    for method in ("historical", "cornish-fisher", "monte-carlo bootstrap", "evt", "copula"):
        assert method in text
    assert "Kupiec p" in text


@pytest.mark.slow
def test_the_scratch_database_parts(pg_server, monkeypatch):
    monkeypatch.setenv("QTIS_DATABASE_URL", pg_server)
    settings = WarehouseSettings()
    text = printed(lambda c: show_futures(c, settings))
    assert "sell 1 ESH22" in text and "buy 1 ESM22" in text and "denied 0" in text
    text = printed(lambda c: show_options(c, settings))
    assert "exercised at SYN" in text and "hedged" in text
    text = printed(lambda c: show_currencies(c, settings))
    assert "USD per EUR" in text and "cash paid" in text
