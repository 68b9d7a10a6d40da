"""Options through the engine on model-priced bars in a real database: settlement at expiry (in
and out of the money) journaled and rebuilt by replay, a greek limit's denial with its numbers,
and the reference scenario - ten calls held to expiry, delta-hedged by the overlay, against the
same calls unhedged."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from demo.options import (
    OPTION_LIMITS,
    RATE,
    UNDERLYING,
    VOLATILITY,
    Scenario,
    daily_pnl,
    delta_path,
    demo_settings,
    hedged_runs,
    option_bars,
    settlements,
)
from quant.option_chain import ChainMarket, gbm_closes, option_symbol
from quant.options import MarketInputs, OptionContract, price_option
from tests.support.bars import load_bars
from tests.support.db import copy_database
from trading_runtime.book import rebuild
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.journal import Journal
from trading_runtime.options import OptionMarket
from trading_runtime.runs import run
from trading_runtime.settings import RuntimeSettings

SCENARIO = Scenario.build()
BAND = 25.0

# settlement, on an underlying of its own: a path that ends at a known level, a call 10% below
# it (in the money) and a put 10% below it (out of the money), both expiring on its 40th bar
ALT = "ALT"
PATH = gbm_closes("2024-01-02", 45, spot=100.0, volatility=VOLATILITY, seed=3)
EXPIRY = PATH.index[39].date()
LEVEL = float(PATH.iloc[39])
ITM_CALL = OptionContract(ALT, round(LEVEL * 0.9), EXPIRY, "call", "european")
OTM_PUT = OptionContract(ALT, round(LEVEL * 0.9), EXPIRY, "put", "european")


@pytest.fixture(scope="module")
def options_market(pg_server, migrated_template):
    url = copy_database(pg_server, migrated_template)
    load_bars(url, SCENARIO.bars())
    load_bars(url, option_bars(PATH, ALT, [ITM_CALL, OTM_PUT],
                               ChainMarket(VOLATILITY, RATE)))  # fmt: skip
    return url


@pytest.fixture(scope="module")
def reference(options_market):
    return hedged_runs(options_market, SCENARIO, BAND, demo_settings(), tag="ref")


def test_settlement_at_expiry_in_and_out_of_the_money_is_journaled_and_replayed(options_market):
    call, put = option_symbol(ITM_CALL), option_symbol(OTM_PUT)
    strategy = StrategyConfig(name="held", signal="buy-and-hold", sizing="fixed", quantity=3)
    config = RunConfig(stream="settle", symbols=[ALT, call, put], strategies=[strategy],
                       start=date(2024, 1, 1), end=date(2024, 3, 8), warmup_bars=0,
                       free_costs=True)  # fmt: skip
    report = run(options_market, config, settings=RuntimeSettings(option_rate=RATE))
    settled = {e.symbol: e for e in settlements(options_market, "settle")}
    assert set(settled) == {call, put}
    assert settled[call].exercised and not settled[put].exercised
    assert settled[call].underlying_price == pytest.approx(LEVEL, abs=1e-9)
    assert settled[call].settlement_price == pytest.approx(LEVEL - ITM_CALL.strike, abs=1e-9)
    assert settled[put].settlement_price == 0.0
    assert settled[call].ts[:10] == str(EXPIRY) and settled[call].quantity == 3
    account = report.book.accounts["held"]
    paid = {f["symbol"]: f["price"] for f in report.fills if f["side"] == "buy"}
    # cash by hand: the capital less what the buys paid, plus the call's exercise value
    cash = 1_000_000 - 3 * (paid[ALT] + 100 * paid[call] + 100 * paid[put])
    cash += 3 * 100 * (LEVEL - ITM_CALL.strike)
    assert account.cash == pytest.approx(cash, abs=1e-6)
    assert account.positions[call].quantity == 0 and account.positions[put].quantity == 0
    assert account.positions[call].realized == pytest.approx(
        300 * (LEVEL - ITM_CALL.strike - paid[call]), abs=1e-6
    )
    assert account.positions[put].realized == pytest.approx(-300 * paid[put], abs=1e-6)
    assert not [f for f in report.fills if f["side"] == "sell"]  # settled, never re-bought
    replayed = rebuild(Journal(options_market, "settle"), from_snapshot=False)
    assert replayed.to_state() == report.book.to_state()


def test_a_greek_limit_denies_the_order_that_breaches_it(options_market):
    call = option_symbol(SCENARIO.held)
    limits = {**OPTION_LIMITS, "max_delta": 0.01}
    strategy = StrategyConfig(name="capped", signal="buy-and-hold", sizing="fixed", quantity=10,
                              limits=limits)  # fmt: skip
    config = RunConfig(stream="capped", symbols=[UNDERLYING, call], strategies=[strategy],
                       warmup_bars=0, free_costs=True, end=date(2024, 1, 10))  # fmt: skip
    report = run(options_market, config, settings=RuntimeSettings(option_rate=RATE))
    assert set(report.denials) == {"max_delta"}
    assert {f["symbol"] for f in report.fills} == {UNDERLYING}  # 10 shares: 0.001x equity
    # the first bar: 10 shares working and 10 calls at the close's implied vol (= 20%)
    day, spot = SCENARIO.underlying.index[0].date(), float(SCENARIO.underlying.iloc[0])
    delta = price_option(SCENARIO.held, MarketInputs(spot, VOLATILITY, RATE, day)).delta
    after = (10 + 10 * 100 * delta) * spot / 1_000_000
    reason = report.denial_examples["max_delta"]
    assert reason == (
        f"max_delta: delta would be {after:.3f}x equity after the order (limit 0.010x equity;"
        f" {10 * spot / 1_000_000:.3f}x equity before)"
    )


def calls_delta() -> pd.Series:
    """Ten held calls' delta in shares at every close before expiry, by QuantLib at the
    generating volatility (independent of the runtime, which implies it from the closes)."""
    closes = SCENARIO.underlying[SCENARIO.underlying.index.date < SCENARIO.held.expiry]
    return pd.Series(
        [1000 * price_option(SCENARIO.held, MarketInputs(float(spot), VOLATILITY, RATE,
                                                         ts.date())).delta
         for ts, spot in closes.items()],
        index=closes.index.tz_localize("UTC"),
    )  # fmt: skip


def test_the_hedged_book_stays_within_the_band_and_its_pnl_varies_far_less(
    options_market, reference
):
    hedged, unhedged = reference["hedged"], reference["unhedged"]
    instruments = {i.symbol: i for i in SCENARIO.bars().instruments}
    market = OptionMarket(rate=RATE)
    path = delta_path(options_market, hedged.stream, "hedged", instruments, market)
    naked = delta_path(options_market, unhedged.stream, "unhedged", instruments, market)
    calls = calls_delta()
    # from the first bar the calls are held (bought at the first bar, filled at the next open)
    path, naked, moved = path.loc[calls.index[1:]], naked.loc[calls.index[1:]], calls.diff()[1:]
    assert naked.to_numpy() == pytest.approx(calls[1:].to_numpy(), abs=1e-6)  # never hedged
    # after every bar: within the band plus the bar's move of the calls' delta (the hedge set
    # at the previous close, to a whole share, has not followed it yet)
    excess = path.abs() - (BAND + moved.abs() + 1.0)
    assert (excess <= 1e-6).all(), excess[excess > 1e-6]
    inside = float((path.abs() <= BAND).mean())
    pnl_hedged, pnl_naked = daily_pnl(hedged, "hedged"), daily_pnl(unhedged, "unhedged")
    ratio = pnl_hedged.std(ddof=1) / pnl_naked.std(ddof=1)
    print(
        f"\nbars held {len(path)}, inside the band {inside:.0%}, max |delta| hedged"
        f" {path.abs().max():.1f} vs unhedged {naked.abs().max():.1f} shares; daily P&L sd"
        f" hedged {pnl_hedged.std(ddof=1):.2f}, unhedged {pnl_naked.std(ddof=1):.2f},"
        f" ratio {ratio:.3f}; re-hedges {sum(f['symbol'] == UNDERLYING for f in hedged.fills)}"
    )
    assert ratio < 0.2
    # both books end flat: the calls settled at expiry, the hedge bought back
    for report, name in ((hedged, "hedged"), (unhedged, "unhedged")):
        assert not [p for p in report.book.accounts[name].positions.values() if p.quantity]
    assert not [f for f in unhedged.fills if f["symbol"] == UNDERLYING]


def test_the_calls_settle_at_expiry_and_the_replay_gives_the_same_book(options_market, reference):
    hedged = reference["hedged"]
    (event,) = settlements(options_market, hedged.stream)
    spot = float(SCENARIO.underlying.loc[str(SCENARIO.held.expiry)])
    assert event.exercised and event.quantity == 10 and event.underlying_price == spot
    assert event.settlement_price == pytest.approx(spot - 100.0, abs=1e-12)
    replayed = rebuild(Journal(options_market, hedged.stream), from_snapshot=False)
    assert replayed.to_state() == hedged.book.to_state()
