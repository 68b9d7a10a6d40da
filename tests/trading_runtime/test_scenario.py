"""A hand-computed run: every fill, fee, slippage and the PnL to the cent, through the real
engine, journal and replay. Costs: half spread 5 bps + fixed slippage 10 bps, commission 2 bps
+ 1 cent a share. SMA cross with fast 1 / slow 2, 100 shares."""

from __future__ import annotations

import pytest

from quant.conventions import Conventions
from tests.support.scenario import BARS, config
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.runs import report, run
from trading_runtime.verify import verify


def test_fills_fees_slippage_and_pnl_to_the_cent(hand_market):
    url = hand_market(BARS)
    result = run(url, config("hand"))
    buy, sell = result.fills
    assert (buy["side"], buy["quantity"], buy["ts"][:10]) == ("buy", 100, "2024-01-04")
    assert round(buy["price"], 6) == 12.018
    assert round(buy["fee"], 2) == round(2e-4 * 1201.8 + 1.0, 2) == 1.24
    assert (sell["side"], sell["quantity"], sell["ts"][:10]) == ("sell", 100, "2024-01-08")
    assert round(sell["price"], 6) == 9.48575
    assert round(sell["fee"], 2) == round(2e-4 * 948.575 + 1.0, 2) == 1.19
    account = result.book.accounts["main"]
    position = account.positions["TEST"]
    assert position.quantity == 0 and round(position.realized, 2) == -253.23  # 100 x -2.53225
    assert round(account.fees, 2) == 2.43
    assert round(account.slippage, 2) == 3.23  # 1.80 on the buy, 1.425 on the sell
    assert round(account.cash, 2) == round(100_000 - 1201.8 - 1.24036 + 948.575 - 1.18971, 2)
    assert round(account.cash, 2) == 99_744.34
    curve = [round(p["equity"]["main"], 2) for p in result.equity_curve]
    assert curve == [100_000.0, 100_000.0, 99_996.96, 99_696.96, 99_744.34, 99_744.34]
    metrics = result.metrics["main"]
    assert metrics["final_equity"] == 99_744.34 and metrics["filled_orders"] == 2
    # the journal alone gives the same state, and checks out
    assert report(url, "hand", Conventions()).book.to_state() == result.book.to_state()
    journal = Journal(url, "hand")
    try:
        found = verify(journal)
    finally:
        journal.close()
    assert found.problems == [] and len(found.checks) >= 4


def test_drawdown_moves_the_state_to_reducing_then_only_exits_pass(hand_market):
    url = hand_market(BARS)
    result = run(url, config("dd", reducing_drawdown=0.002, halt_drawdown=0.005))
    assert [f["side"] for f in result.fills] == ["buy", "sell"]  # the exit still went out
    journal = Journal(url, "dd")
    try:
        states = list(journal.read(types=["risk_state_changed"]))
    finally:
        journal.close()
    assert [s.state for s in states] == ["reducing", "active"]
    assert states[0].reason.startswith("drawdown 0.3%")
    assert "flat again" in states[1].reason and states[1].reset_peak
    account = result.book.accounts["main"]
    assert account.state == "active" and account.peak == pytest.approx(account.equity)


def test_drawdown_halt_cancels_and_stops_everything(hand_market):
    url = hand_market(BARS)
    result = run(url, config("halt", reducing_drawdown=0.001, halt_drawdown=0.0025))
    account = result.book.accounts["main"]
    assert account.state == "halted" and "halt level" in account.state_reason
    assert [f["side"] for f in result.fills] == ["buy"]  # halted before the exit was sent
    assert account.positions["TEST"].quantity == 100
    assert result.metrics["main"]["denied"] == 0  # a halted account is not even asked


@pytest.mark.parametrize("algo", ["twap", "vwap"])
def test_twap_and_vwap_slice_an_order_over_bars(hand_market, algo):
    rows = [(f"2024-02-{d:02d}", 10.0, 12.0, 9.5, 10.0 + 0.1 * d, 1e6) for d in range(1, 13)]
    url = hand_market(rows)
    strategy = StrategyConfig(
        signal="buy-and-hold",
        sizing="fixed",
        quantity=1000,
        algo=algo,
        algo_bars=4,
        capital=100_000,
    )
    result = run(url, RunConfig(stream=algo, strategies=[strategy], free_costs=True))
    assert [f["quantity"] for f in result.fills] == [250, 250, 250, 250]
    assert len({f["ts"] for f in result.fills}) == 4  # one slice a bar
    assert result.book.accounts["main"].positions["TEST"].quantity == 1000
