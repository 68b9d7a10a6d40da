"""A backtest whose orders go through AlpacaExecution to the stand-in market (real alpaca-py
clients, real sockets) ends as the in-process simulator's: the same fills (quantity, price,
fee, time), equity curve and final equity. Only what Alpaca does not report differs: a fill's
reference price (the broker reports none, so slippage is not measured) and its id."""

from __future__ import annotations

from quant.conventions import Conventions
from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from tests.support.alpaca import KEY, SECRET, follow, market_of
from tests.support.venue_costs import BARS, hand_config, run_through
from trading_runtime.alpaca.execution import AlpacaExecution
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.runs import build_engine, report, run
from trading_runtime.settings import FixSettings, RuntimeSettings
from warehouse.settings import AlpacaSettings


def comparable(fills: list[dict]) -> list[tuple]:
    return [(f["client_id"], f["quantity"], round(f["price"], 9), round(f["fee"], 9), f["ts"])
            for f in fills]  # fmt: skip


def test_a_backtest_through_alpaca_ends_as_the_simulators(hand_market, tmp_path):
    url = hand_market(BARS)
    simulated = run(url, hand_config("sim")).to_json()
    serving = ServingSettings()
    base = build_engine(url, hand_config("alpaca"), RuntimeSettings(), serving,
                        FixSettings(store_dir=tmp_path), tracking=TrackingSettings())  # fmt: skip
    market = market_of(base.feed, base.config.cost_model(), base.instruments)
    with StandIn(market, KEY, SECRET) as standin:
        alpaca_settings = AlpacaSettings(key_id=KEY, secret_key=SECRET, trading_url=standin.url,
                                         stream_url=standin.stream_url)  # fmt: skip
        with AlpacaExecution(base.instruments, base.config.cost_model(), alpaca_settings) as alpaca:
            assert alpaca.wait_connected(10)
            follow(market, base.feed, alpaca)
            run_through(base, alpaca, serving.serve_max_windows)
    through_alpaca = report(url, "alpaca", Conventions()).to_json()
    ids = [f["client_id"] for f in simulated["fills"]]
    assert len(ids) >= 3 and len(set(ids)) < len(ids)  # a partial fill among them
    assert comparable(through_alpaca["fills"]) == comparable(simulated["fills"])
    assert through_alpaca["equity_curve"] == simulated["equity_curve"]
    got, want = through_alpaca["metrics"]["total"], simulated["metrics"]["total"]
    assert got["final_equity"] == want["final_equity"] and got["fees"] == want["fees"]
