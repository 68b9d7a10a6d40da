"""A EUR stock (SAP) in a USD account, through the real engine, simulated venue and journal, with
the EURUSD rate as bars of its own. Every number is worked out by hand below.

Costs (tests.support.scenario): half spread 5 bps + fixed slippage 10 bps, commission 2 bps +
1 cent a share, all in the instrument's currency. Buy-and-hold of 100 SAP from the first bar:

    bar        SAP o/c     EURUSD o/c    what happens
    01-02      10 / 10     1.10 / 1.10   buy 100 decided at 10 EUR (1,100 USD of notional)
    01-03      10 / 10     1.11 / 1.12   filled at 10.015 EUR, fee 1.2003 EUR, at the open 1.11
    01-04      10 / 10     1.13 / 1.15   SAP unchanged: equity moves by 100 x 10 x 0.03 = 30 USD
    01-05      10.5 / 11   1.15 / 1.15   SAP up 1 EUR: + 100 x 1 x 1.15 = 115 USD

cash = 100,000 - (1,001.5 + 1.2003) x 1.11 = 98,887.002667 USD
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tests.support.bars import load_bars
from tests.support.db import copy_database
from tests.support.scenario import COSTS
from trading_runtime import events as ev
from trading_runtime.analytics.positions import holdings
from trading_runtime.book import Book, rebuild
from trading_runtime.broker import CrossSection
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.domain import Fill, Position, Side
from trading_runtime.fx import FxRateMissing, FxRates
from trading_runtime.history import ReturnWindow
from trading_runtime.journal import Journal
from trading_runtime.runs import run
from trading_runtime.settings import RuntimeSettings
from trading_runtime.strategies import StrategyContext, build_slot
from trading_runtime.verify import verify
from warehouse.providers.base import Instrument, RawBars

SAP = [  # date, open, high, low, close
    ("2024-01-02", 10.0, 10.0, 10.0, 10.0),
    ("2024-01-03", 10.0, 10.5, 9.5, 10.0),
    ("2024-01-04", 10.0, 10.5, 9.5, 10.0),
    ("2024-01-05", 10.5, 11.2, 10.4, 11.0),
]
EURUSD = [
    ("2024-01-02", 1.10, 1.10, 1.10, 1.10),
    ("2024-01-03", 1.11, 1.13, 1.10, 1.12),
    ("2024-01-04", 1.13, 1.16, 1.13, 1.15),
    ("2024-01-05", 1.15, 1.15, 1.15, 1.15),
]
INSTRUMENTS = [
    Instrument("SAP", sector="test", currency="EUR"),
    Instrument("EURUSD", asset_class="fx", currency="USD"),
]
CASH = 100_000 - (100 * 10.015 + 1.2003) * 1.11  # 98,887.002667


def bars(symbol: str, rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close"])
    frame.insert(0, "symbol", symbol)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    frame["volume"] = 1e6
    return frame


@pytest.fixture
def fx_market(pg_server, migrated_template):
    """A warehouse with SAP and the EURUSD bars ``keep`` leaves (default all)."""

    def make(keep=lambda day: True) -> str:
        url = copy_database(pg_server, migrated_template)
        rates = [r for r in EURUSD if keep(r[0])]
        frame = pd.concat([bars("SAP", SAP), bars("EURUSD", rates)], ignore_index=True)
        load_bars(url, RawBars(frame, "hand", "test", list(INSTRUMENTS)))
        return url

    return make


def config(stream: str, mode: str = "backtest", **limits) -> RunConfig:
    strategy = StrategyConfig(
        signal="buy-and-hold",
        sizing="fixed",
        quantity=100,
        capital=100_000,
        limits={"reducing_drawdown": None, "halt_drawdown": None, **limits},
    )
    return RunConfig(mode=mode, stream=stream, strategies=[strategy], costs=COSTS, warmup_bars=0)


def events(url: str, stream: str, *types: str) -> list[ev.Event]:
    journal = Journal(url, stream)
    try:
        return list(journal.read(types=list(types)))
    finally:
        journal.close()


def test_a_eur_stock_in_a_usd_account_converts_cash_equity_and_journal(fx_market):
    url = fx_market()
    result = run(url, config("eur"))
    (fill,) = result.fills  # the EURUSD pair is a rate: never traded
    assert (fill["symbol"], fill["quantity"], fill["ts"][:10]) == ("SAP", 100, "2024-01-03")
    assert round(fill["price"], 6) == 10.015  # in EUR: 10 + 15 bps
    assert round(fill["fee"], 6) == round(2e-4 * 1001.5 + 1.0, 6) == 1.2003  # in EUR
    assert (fill["currency"], fill["fx_rate"]) == ("EUR", 1.11)  # the pair's open of its bar
    account = result.book.accounts["main"]
    assert round(account.cash, 6) == round(CASH, 6) == 98_887.002667
    assert round(account.fees, 6) == round(1.2003 * 1.11, 6)  # in USD
    curve = [round(p["equity"]["main"], 6) for p in result.equity_curve]
    assert curve == [100_000.0, 100_007.002667, 100_037.002667, 100_152.002667]
    assert round(curve[2] - curve[1], 6) == round(100 * 10 * (1.15 - 1.12), 6) == 30.0  # FX alone
    position = account.positions["SAP"]
    assert (position.avg_price, position.fx) == (10.015, 1.11)
    # unrealized in USD: 100 x (11 x 1.15 - 10.015 x 1.11); with the fee it is the P&L
    assert round(position.unrealized(11.0, 1.15), 6) == 153.335
    assert round(position.unrealized(11.0), 6) == 98.5  # in EUR, the FX move left out
    assert round(curve[-1] - 100_000, 6) == round(153.335 - 1.2003 * 1.11, 6)
    # the journal: the base currency, the fill's conversion with its rate, the bars' FX marks
    (started,) = events(url, "eur", ev.RUN_STARTED)
    assert started.base_currency == "USD"
    (filled,) = events(url, "eur", ev.ORDER_FILLED)
    assert filled.to_payload()["fill"]["currency"] == "EUR"
    assert filled.to_payload()["fill"]["fx_rate"] == 1.11
    closes = events(url, "eur", ev.BAR_CLOSED)
    assert [c.fx for c in closes] == [{"EUR": 1.10}, {"EUR": 1.12}, {"EUR": 1.15}, {"EUR": 1.15}]
    # the journal alone rebuilds the same book, and checks out (cash = capital - fills, in USD)
    replayed = rebuild(Journal(url, "eur"), from_snapshot=False)
    assert replayed.to_state() == result.book.to_state()
    assert round(replayed.accounts["main"].cash, 6) == 98_887.002667
    journal = Journal(url, "eur")
    try:
        found = verify(journal)
    finally:
        journal.close()
    assert found.problems == [], found.problems
    # reports value the position in USD too: 100 x 11 EUR x 1.15 at the last bar
    held = holdings(events(url, "eur", ev.ORDER_FILLED, ev.BAR_CLOSED))["main"]
    assert [round(v, 6) for v in held.values["SAP"]] == [0.0, 1_120.0, 1_150.0, 1_265.0]


class Crash(RuntimeError):
    pass


def test_a_paper_run_restarted_mid_way_ends_with_the_same_usd_book(fx_market):
    url = fx_market()

    def crash(done: int, total: int) -> None:
        if done == 3:  # after the bar EURUSD moved alone, before the last one
            raise Crash

    with pytest.raises(Crash):
        run(url, config("restart", mode="paper"), progress=crash)
    wrong = RuntimeSettings(base_currency="EUR")
    with pytest.raises(ValueError, match="started with base currency USD"):
        run(url, config("restart", mode="paper"), settings=wrong)
    result = run(url, config("restart", mode="paper"))
    account = result.book.accounts["main"]
    assert round(account.cash, 6) == 98_887.002667
    assert round(account.equity, 6) == 100_152.002667
    assert len(result.fills) == 1
    curve = [round(p["equity"]["main"], 6) for p in result.equity_curve]
    assert curve == [100_000.0, 100_007.002667, 100_037.002667, 100_152.002667]


def test_limits_and_sizing_are_in_the_base_currency(fx_market):
    url = fx_market()
    # 100 SAP at 10 EUR: 1,000 EUR, 1,100 USD at 1.10 - above a 1,050 USD position limit
    denied = run(url, config("limit", max_position_notional=1_050))
    assert denied.fills == []
    reason = denied.denial_examples["max_position_notional"]
    assert "1,100.00 above the limit 1,050.00" in reason
    # a 1,050 USD order cap sizes the order at 1,050 / (10 x 1.10) = 95.45 -> 95 shares
    sized = run(url, config("sized", max_order_notional=1_050))
    assert [f["quantity"] for f in sized.fills] == [95]


def test_a_missing_rate_fails_and_names_the_pair(fx_market):
    url = fx_market(keep=lambda day: day != "2024-01-04")
    with pytest.raises(FxRateMissing, match=r"no EURUSD rate on 2024-01-04.*SAP \(EUR\)"):
        run(url, config("gap"))
    with pytest.raises(FxRateMissing, match=r"no EURUSD \(or USDEUR\) bars"):
        run(url, config("no-pair").model_copy(update={"symbols": ["SAP"]}))


def cross_section(close: list[float], open_: list[float] | None = None) -> CrossSection:
    close_ = np.array(close)
    opens = np.array(open_) if open_ is not None else close_
    ts = datetime(2024, 1, 2, tzinfo=UTC)
    return CrossSection(0, ts, opens, close_, close_, close_, np.ones(len(close)))


def test_rates_direct_inverse_and_the_base_itself():
    instruments = {
        "SAP": Instrument("SAP", currency="EUR"),
        "VOD": Instrument("VOD", currency="GBP"),
        "IBM": Instrument("IBM"),
        "EURUSD": Instrument("EURUSD", asset_class="fx"),
        "USDGBP": Instrument("USDGBP", asset_class="fx", currency="GBP"),
    }
    fx = FxRates("USD", instruments, list(instruments))
    bar = cross_section([10.0, 2.0, 100.0, 1.25, 0.8], open_=[10.0, 2.0, 100.0, 1.2, 0.5])
    assert fx.marks(bar) == {"EUR": 1.25, "GBP": 1.25}  # GBP: 1 / 0.8 USD
    np.testing.assert_allclose(fx.in_base(bar)[:3], [12.5, 2.5, 100.0])
    assert fx.for_fill("SAP", bar) == ("EUR", 1.2)  # fills: the pair's open
    assert fx.for_fill("VOD", bar) == ("GBP", 2.0)
    assert fx.for_fill("IBM", bar) == (None, 1.0)
    assert fx.tradable(np.ones(5)).tolist() == [1, 1, 1, 0, 0]  # the pairs are not traded
    one = FxRates("USD", {"IBM": instruments["IBM"]}, ["IBM"])
    assert not one.active and one.marks(bar) is None
    usd = cross_section([100.0])
    assert one.in_base(usd) is usd.close  # the bar's own prices, untouched
    with pytest.raises(ValueError, match="only the simulated venue"):
        FxRates("USD", instruments, list(instruments), simulated=False)


def test_realized_pnl_in_the_base_currency_includes_the_fx_move_on_the_cost():
    def fill(side: Side, quantity: float, price: float, rate: float) -> Fill:
        ts = datetime(2024, 1, 2, tzinfo=UTC)
        return Fill("f", "c", "a", "SAP", side, quantity, price, 0.0, ts, price, 1.0, "EUR", rate)

    # bought at 10 EUR at 1.10 USD, sold at 10 EUR at 1.20: a pure FX gain of 100 x 10 x 0.1
    flat = Position("SAP").with_fill(fill(Side.BUY, 100, 10.0, 1.10))
    flat = flat.with_fill(fill(Side.SELL, 100, 10.0, 1.20))
    assert (flat.quantity, round(flat.realized, 9), flat.fx) == (0.0, 100.0, 1.0)
    # two buys: cost 1,000 x 1.1 + 1,200 x 1.2 = 2,540 USD; sold for 2,200 EUR at 1.0
    held = Position("SAP").with_fill(fill(Side.BUY, 100, 10.0, 1.1))
    held = held.with_fill(fill(Side.BUY, 100, 12.0, 1.2))
    assert held.avg_price == 11.0 and round(held.avg_price * held.fx * 200, 9) == 2_540.0
    sold = held.with_fill(fill(Side.SELL, 200, 11.0, 1.0))
    assert round(sold.realized, 9) == 2_200.0 - 2_540.0


def test_a_base_currency_fill_journals_as_before_and_old_payloads_load():
    ts = datetime(2024, 1, 2, tzinfo=UTC)
    usd = Fill("f", "c", "a", "IBM", Side.BUY, 10, 100.0, 1.0, ts, 100.0)
    keys = ["fill_id", "client_id", "account", "symbol", "side", "quantity", "price", "fee",
            "ts", "reference", "multiplier"]  # fmt: skip
    assert list(usd.to_payload()) == keys
    assert Fill.from_payload(usd.to_payload()) == usd
    assert usd.cash_flow == -(10 * 100.0 + 1.0)
    eur = Fill("f", "c", "a", "SAP", Side.SELL, 10, 100.0, 1.0, ts, 100.0, 1.0, "EUR", 1.1)
    assert Fill.from_payload(eur.to_payload()) == eur
    assert round(eur.cash_flow, 9) == round((1000.0 - 1.0) * 1.1, 9)
    # a book snapshot of a one-currency USD book keeps no currency state
    book = Book().apply_all([ev.RunStarted({}, (ev.AccountSpec("a", 1e5, {}),))])
    assert "fx" not in book.to_state() and book.base_currency == "USD"


def test_sizers_share_the_equity_among_the_traded_symbols_not_the_fx_pairs():
    instruments = {
        "SAP": Instrument("SAP", currency="EUR"),
        "EURUSD": Instrument("EURUSD", asset_class="fx"),
    }
    context = StrategyContext(["EURUSD", "SAP"], instruments, [], ReturnWindow(2, 5),
                              RuntimeSettings(), None, True, 1)  # fmt: skip
    for sizing in ("equal", "vol-target"):
        slot = build_slot(StrategyConfig(signal="buy-and-hold", sizing=sizing), context)
        assert slot.sizer.n == 1  # SAP alone: before, the pair took half of the equity
