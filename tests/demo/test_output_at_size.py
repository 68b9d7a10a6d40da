"""The demo's output at the size of a universe: a list of symbols is one line however many
there are (a 200-symbol demo printed all 200 twice), and denied orders say which check denied
them, how many, an example with its numbers and the limit behind it."""

from __future__ import annotations

import io
from datetime import date

from rich.console import Console

from cli.render.format import symbols_text
from cli.render.trading import denials_text, print_walk_forward
from demo.run import bars_line
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import run
from trading_runtime.walkforward import WalkForwardResult

UNIVERSE = [f"SYN{k:04d}" for k in range(200)]
METRICS = {"final_equity": 1e6, "total_return": 0.01, "cagr": 0.01, "volatility": 0.1,
           "sharpe": 0.5, "max_drawdown": -0.05, "fees": 10.0, "bars": 63,
           "windows_traded": 3, "fills": 1200}  # fmt: skip


def printed(render) -> str:
    out = io.StringIO()
    render(Console(file=out, width=120))
    return " ".join(out.getvalue().split())


def test_a_universe_is_one_line_and_a_few_symbols_are_named():
    assert symbols_text(UNIVERSE[::-1]) == "200 symbols: SYN0000..SYN0199"
    assert symbols_text(["MSFT", "IBM", "AAPL"]) == "AAPL, IBM, MSFT"
    assert bars_line(dict.fromkeys(UNIVERSE, 1500)) == (
        "market.bars: 200 symbols: SYN0000..SYN0199, 1,500 bars each"
    )
    uneven = dict.fromkeys(UNIVERSE, 1500) | {"SYN0007": 900, "SYN0100": 1400}
    assert bars_line(uneven).endswith("900 to 1,500 bars each (median 1,500)")


def test_a_walk_forward_over_a_universe_does_not_list_every_symbol():
    settings = {"mode": "rolling", "source": "retrain", "purge": 20}
    found = WalkForwardResult("wf", settings, UNIVERSE, 1, [], METRICS, [], [],
                              {"metrics": METRICS})  # fmt: skip
    text = printed(lambda console: print_walk_forward(found, console))
    assert "symbols 200 symbols: SYN0000..SYN0199" in text
    assert "SYN0001" not in text


def test_denials_name_the_check_the_numbers_and_the_limit(market):
    """A run whose position limit denies orders: each check's count, its first denial's
    reason and the setting of the limit."""
    strategy = StrategyConfig(signal="sma-cross", fast=5, slow=20, sizing="fixed", quantity=300,
                              limits={"max_position_notional": 100_000})  # fmt: skip
    config = RunConfig(stream="denied", strategies=[strategy], start=date(2012, 1, 3))
    result = run(market, config)
    count = result.denials["max_position_notional"]
    example = result.denial_examples["max_position_notional"]
    assert "above the limit 100,000.00" in example
    assert result.to_json()["denial_examples"] == result.denial_examples
    text = denials_text(result.denials, result.denial_examples)
    assert text.startswith(f"denied by check: max_position_notional {count:,} (e.g. ")
    assert "above the limit 100,000.00; QTIS_RISK_MAX_POSITION_NOTIONAL)" in text
    most_first = denials_text({"cash": 3, "order_rate": 1200}, {})
    assert most_first == (
        "denied by check: order_rate 1,200 (QTIS_RISK_MAX_ORDERS_PER_BAR), "
        "cash 3 (QTIS_RISK_FEE_RESERVE_BPS)"
    )
