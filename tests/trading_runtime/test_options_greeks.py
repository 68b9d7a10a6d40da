"""Options' greeks in the runtime without a database: the desk's implied volatilities and greeks
against quant.options and QuantLib's analytic engine built here, the delta-hedge overlay's band
by hand, the expiry overlay, the greek limits' units and the risk report's greeks section."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from quant.options import (
    MarketInputs,
    OptionContract,
    OptionPosition,
    StockPosition,
    portfolio_greeks,
    price_option,
)
from trading_runtime import events as ev
from trading_runtime.analytics.positions import Holdings
from trading_runtime.analytics.risk_report import risk_report
from trading_runtime.book import Book
from trading_runtime.broker import CrossSection
from trading_runtime.delta_hedge import DeltaHedge
from trading_runtime.domain import Order, Position, Side
from trading_runtime.instruments import Instrument
from trading_runtime.option_risk import GreekLimits
from trading_runtime.options import OptionDesk, OptionExpiries, OptionMarket, contract_of
from trading_runtime.settings import RiskLimits, RiskReportSettings

DAY = date(2024, 2, 1)
EXPIRY = date(2024, 5, 17)
RATE, DIV, VOL, SPOT = 0.04, 0.01, 0.27, 103.0
CALL = OptionContract("SYN", 100.0, EXPIRY, "call", "european")
PUT = OptionContract("SYN", 95.0, EXPIRY, "put", "european")
SYMBOLS = ["SYN", "SYN240517C100", "SYN240517P95"]
INSTRUMENTS = {
    "SYN": Instrument("SYN", sector="test"),
    **{
        s: Instrument(s, asset_class="option", multiplier=100.0, underlying="SYN", expiry=EXPIRY,
                      strike=c.strike, option_right=c.right, exercise_style="european")
        for s, c in zip(SYMBOLS[1:], (CALL, PUT), strict=True)
    },
}  # fmt: skip
MARKET = OptionMarket(rate=RATE, dividend_yield=DIV, fallback_vol=0.5)


def true_price(contract: OptionContract, spot: float = SPOT) -> float:
    return price_option(contract, MarketInputs(spot, VOL, RATE, DAY, DIV)).price


def bar(closes: list[float], day: date = DAY) -> CrossSection:
    ts = datetime(day.year, day.month, day.day, tzinfo=UTC)
    c = np.array(closes, dtype=float)
    return CrossSection(0, ts, c, c, c, c, np.full(len(c), 1e6))


def quantlib_analytic(contract: OptionContract) -> ql.VanillaOption:
    """The option under QuantLib's analytic engine, built here without quant.options."""
    ql.Settings.instance().evaluationDate = ql.Date(DAY.day, DAY.month, DAY.year)
    today = ql.Date(DAY.day, DAY.month, DAY.year)

    def curve(rate):
        return ql.YieldTermStructureHandle(ql.FlatForward(today, rate, ql.Actual365Fixed()))

    vol = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, ql.NullCalendar(), VOL, ql.Actual365Fixed())
    )
    process = ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(SPOT)), curve(DIV),
                                           curve(RATE), vol)  # fmt: skip
    kind = ql.Option.Call if contract.right == "call" else ql.Option.Put
    expiry = ql.Date(EXPIRY.day, EXPIRY.month, EXPIRY.year)
    option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, contract.strike),
                              ql.EuropeanExercise(expiry))  # fmt: skip
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option


def desk_at(spot: float = SPOT) -> OptionDesk:
    desk = OptionDesk(INSTRUMENTS, SYMBOLS, MARKET)
    desk.observe(bar([spot, true_price(CALL, spot), true_price(PUT, spot)]))
    return desk


def test_greeks_are_quant_options_at_the_implied_volatility_and_quantlibs():
    desk = desk_at()
    for symbol, contract in zip(SYMBOLS[1:], (CALL, PUT), strict=True):
        valued = desk.value(symbol, desk.closes[symbol], SPOT, DAY)
        assert valued.implied and valued.volatility == pytest.approx(VOL, abs=1e-10)
        truth = price_option(contract, MarketInputs(SPOT, VOL, RATE, DAY, DIV))
        reference = quantlib_analytic(contract)
        for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
            ours = getattr(valued.greeks, name)
            assert ours == pytest.approx(getattr(truth, name), abs=1e-8), name
            theirs = reference.NPV() if name == "price" else getattr(reference, name)()
            assert ours == pytest.approx(theirs, abs=1e-8), name
    book = desk.greeks({"SYN": -300.0, SYMBOLS[1]: 10.0, SYMBOLS[2]: -4.0})
    by_hand = portfolio_greeks(
        [OptionPosition(CALL, 10, price_option(CALL, MarketInputs(SPOT, VOL, RATE, DAY, DIV))),
         OptionPosition(PUT, -4, price_option(PUT, MarketInputs(SPOT, VOL, RATE, DAY, DIV))),
         StockPosition("SYN", -300)], {"SYN": SPOT},
    )  # fmt: skip
    for name in ("delta_currency", "gamma_currency", "vega", "theta", "rho"):
        assert getattr(book, name) == pytest.approx(getattr(by_hand, name), rel=1e-10), name
    assert book.delta_units["SYN"] == pytest.approx(by_hand.delta_units["SYN"], abs=1e-7)


def test_a_close_no_volatility_gives_falls_back_and_says_so():
    desk = desk_at()
    below_intrinsic = desk.value(SYMBOLS[1], 2.0, SPOT, DAY)  # the call is worth at least 3
    assert not below_intrinsic.implied and below_intrinsic.volatility == 0.5
    at_half = price_option(CALL, MarketInputs(SPOT, 0.5, RATE, DAY, DIV))
    assert below_intrinsic.greeks == at_half


def test_option_terms_and_the_underlying_are_required():
    broken = Instrument("X", asset_class="option", underlying="SYN", strike=100.0)
    with pytest.raises(ValueError, match="X has no expiry, option_right, exercise_style"):
        contract_of(broken)
    assert contract_of(INSTRUMENTS["SYN"]) is None
    with pytest.raises(ValueError, match="underlying SYN is not among the run's symbols"):
        OptionDesk(INSTRUMENTS, SYMBOLS[1:], MARKET)


def test_the_delta_hedge_holds_inside_the_band_and_flattens_outside_it():
    hedge = DeltaHedge.of("SYN", 30.0, SYMBOLS, INSTRUMENTS, MARKET)
    closes = [SPOT, true_price(CALL), true_price(PUT)]
    delta = price_option(CALL, MarketInputs(SPOT, VOL, RATE, DAY, DIV)).delta
    calls = 1000 * delta  # ten calls, in shares
    current = np.array([-round(calls) + 20.0, 10.0, 0.0])  # 20 shares off: inside the band
    kept = hedge.targets(np.array([10.0, 10.0, 0.0]), bar(closes), None, current, 1e6)
    assert kept[0] == current[0] and hedge.last_delta == pytest.approx(calls - round(calls) + 20)
    # the sizer's 10 shares never count: the hedge's target is the overlay's
    current[0] = -round(calls) + 45.0  # 45 shares off: out of the band, back to delta 0
    moved = hedge.targets(np.array([10.0, 10.0, 0.0]), bar(closes), None, current, 1e6)
    assert moved[0] == pytest.approx(-calls, abs=1e-9)
    with pytest.raises(ValueError, match="not among the run's symbols"):
        DeltaHedge.of("QQQ", 30.0, SYMBOLS, INSTRUMENTS, MARKET)


def test_expired_options_are_targeted_flat():
    overlay = OptionExpiries.of(SYMBOLS, INSTRUMENTS)
    target = np.array([5.0, 10.0, -3.0])
    assert overlay.targets(target, bar([1, 1, 1], date(2024, 5, 16)), None, None, 0).tolist() == [
        5.0, 10.0, -3.0,
    ]  # fmt: skip
    assert overlay.targets(target, bar([1, 1, 1], EXPIRY), None, None, 0).tolist() == [5, 0, 0]
    assert OptionExpiries.of(["SYN"], INSTRUMENTS) is None


def book_with(quantities: dict[str, float], equity: float = 1e6) -> Book:
    """Account ``a`` holding ``quantities`` (set directly: the greek checks read positions)."""
    book = Book()
    book.apply(ev.RunStarted({}, (ev.AccountSpec("a", equity, {}),)))
    account = book.accounts["a"]
    for symbol, quantity in quantities.items():
        account.positions[symbol] = Position(symbol, quantity, 1.0,
                                             multiplier=INSTRUMENTS[symbol].multiplier)  # fmt: skip
    return book


def order(symbol: str, side: Side, quantity: float) -> Order:
    return Order(f"a-{symbol}", "a", symbol, side, quantity)


def test_greek_limits_are_judged_after_the_order_in_their_units():
    desk = desk_at()
    checks = GreekLimits(desk)
    book = book_with({SYMBOLS[1]: 10.0})
    account = book.accounts["a"]
    unit = price_option(CALL, MarketInputs(SPOT, VOL, RATE, DAY, DIV))
    # vega per volatility point of 20 calls: 20 x 100 x vega / 100
    vega_limits = RiskLimits(max_vega=1.5 * 10 * unit.vega)
    found = checks.check(order(SYMBOLS[1], Side.BUY, 10), account, book, vega_limits)
    assert found == (
        "max_vega",
        f"vega would be {20 * unit.vega:,.2f} per vol point after the order (limit"
        f" {15 * unit.vega:,.2f} per vol point; {10 * unit.vega:,.2f} per vol point before)",
    )
    assert checks.check(order(SYMBOLS[1], Side.BUY, 4), account, book, vega_limits) is None
    # 1% gamma of 20 calls: 20 x 100 x gamma x spot^2 / 100
    gamma = 20 * unit.gamma * SPOT**2
    found = checks.check(order(SYMBOLS[1], Side.BUY, 10), account, book,
                         RiskLimits(max_gamma=gamma * 0.9))  # fmt: skip
    assert found is not None and found[0] == "max_gamma" and f"{gamma:,.2f} per 1%" in found[1]
    # delta: 10 calls are 1000 x delta shares; 0.001x equity allowed
    delta = RiskLimits(max_delta=0.001)
    breach = checks.check(order("SYN", Side.BUY, 10), account, book, delta)
    assert breach is not None and breach[0] == "max_delta"
    after = (1000 * unit.delta + 10) * SPOT / 1e6
    assert breach[1].startswith(f"delta would be {after:.3f}x equity after the order")
    # selling stock makes the delta smaller: allowed although still above the limit
    assert checks.check(order("SYN", Side.SELL, 100), account, book, delta) is None
    # other symbols, and no greek limit: nothing judged
    assert checks.check(order(SYMBOLS[1], Side.BUY, 1000), account, book, RiskLimits()) is None


def test_an_order_in_an_expired_option_is_denied():
    desk = desk_at()
    desk.observe(bar([SPOT, 3.0, 0.0], EXPIRY))
    found = GreekLimits(desk).check(order(SYMBOLS[1], Side.BUY, 1), book_with({}).accounts["a"],
                                    book_with({}), RiskLimits())  # fmt: skip
    assert found == (
        "option_expired",
        f"{SYMBOLS[1]} expired on {EXPIRY}: it is settled, not traded",
    )


def holdings(quantities: dict[str, float], prices: dict[str, float]) -> Holdings:
    index = pd.DatetimeIndex([pd.Timestamp(DAY, tz="UTC")])
    q = pd.DataFrame([quantities], index=index)
    values = pd.DataFrame(
        [{s: quantities[s] * prices[s] * INSTRUMENTS[s].multiplier for s in quantities}],
        index=index,
    )
    return Holdings(q, values, pd.Series(1e6, index=index))


def test_the_risk_report_has_the_books_greeks_per_underlying_and_in_total():
    quantities = {"SYN": -500.0, SYMBOLS[1]: 10.0, SYMBOLS[2]: -4.0}
    prices = {"SYN": SPOT, SYMBOLS[1]: true_price(CALL), SYMBOLS[2]: true_price(PUT)}
    returns = pd.DataFrame(np.random.default_rng(0).normal(0, 0.01, (30, 3)), columns=SYMBOLS,
                           index=pd.bdate_range(end=DAY, periods=30, tz="UTC"))  # fmt: skip
    settings = RiskReportSettings(paths=200, seed=1)
    held = holdings(quantities, prices)
    report = risk_report(held, returns, INSTRUMENTS, settings, option_market=MARKET)
    greeks = report["greeks"]
    expected = desk_at().greeks(quantities)
    total = greeks["total"]
    assert total["delta"] == pytest.approx(expected.delta_currency, rel=1e-12)
    assert total["gamma_1pct"] == pytest.approx(expected.gamma_currency, rel=1e-12)
    assert total["vega_per_point"] == pytest.approx(expected.vega / 100, rel=1e-12)
    assert total["theta_per_day"] == pytest.approx(expected.theta / 365, rel=1e-12)
    assert greeks["by_underlying"]["SYN"]["delta_units"] == pytest.approx(
        expected.delta_units["SYN"], rel=1e-10
    )
    assert [o["volatility"] for o in greeks["options"]] == pytest.approx([VOL, VOL], abs=1e-10)
    # without the option market, or the underlying's price, the section says what is missing
    bare = risk_report(held, returns, INSTRUMENTS, settings)
    assert bare["greeks"] == {
        "note": "not computed: pass option_market (OptionMarket.of(RuntimeSettings))"
    }
    unhedged = holdings({SYMBOLS[1]: 10.0}, prices)
    note = risk_report(unhedged, returns, INSTRUMENTS, settings, option_market=MARKET)["greeks"]
    assert note == {"note": "not computed: no price of SYN (pass spots=)"}
    given = risk_report(unhedged, returns, INSTRUMENTS, settings, option_market=MARKET,
                        spots={"SYN": SPOT})["greeks"]  # fmt: skip
    assert given["total"]["delta"] == pytest.approx(1000 * price_option(
        CALL, MarketInputs(SPOT, VOL, RATE, DAY, DIV)).delta * SPOT, rel=1e-9)  # fmt: skip
    equities = holdings({"SYN": 100.0}, prices)
    assert "greeks" not in risk_report(equities, returns, INSTRUMENTS, settings)
