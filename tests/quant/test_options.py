"""Option prices and greeks against the Black-Scholes-Merton closed form written here with
scipy (Hull, Options, Futures and Other Derivatives, ch. 15 and 19) and against QuantLib built
independently; American engines against each other and against the European bounds; expiry
settlement; a book's greeks by hand; and a daily delta hedge along simulated paths."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from quant.options import (
    MarketInputs,
    OptionContract,
    OptionGreeks,
    OptionPosition,
    OptionPricer,
    StockPosition,
    exercises_at_expiry,
    portfolio_greeks,
    price_option,
    settle_at_expiry,
)

TODAY = date(2024, 1, 2)


def bsm(right: str, s: float, k: float, t: float, r: float, q: float, vol: float) -> dict:
    """Closed-form price and greeks; theta is dV/dt per year (T shrinking), vega and rho per
    1.00 of volatility and rate."""
    d1 = (math.log(s / k) + (r - q + vol * vol / 2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    dq, dr, pdf = math.exp(-q * t), math.exp(-r * t), norm.pdf(d1)
    common = {
        "gamma": dq * pdf / (s * vol * math.sqrt(t)),
        "vega": s * dq * pdf * math.sqrt(t),
    }
    decay = -s * dq * pdf * vol / (2 * math.sqrt(t))
    if right == "call":
        return common | {
            "price": s * dq * norm.cdf(d1) - k * dr * norm.cdf(d2),
            "delta": dq * norm.cdf(d1),
            "theta": decay - r * k * dr * norm.cdf(d2) + q * s * dq * norm.cdf(d1),
            "rho": k * t * dr * norm.cdf(d2),
        }
    return common | {
        "price": k * dr * norm.cdf(-d2) - s * dq * norm.cdf(-d1),
        "delta": -dq * norm.cdf(-d1),
        "theta": decay + r * k * dr * norm.cdf(-d2) - q * s * dq * norm.cdf(-d1),
        "rho": -k * t * dr * norm.cdf(-d2),
    }


def contract(right="call", strike=100.0, days=182, style="european", underlying="AAA"):
    return OptionContract(underlying, strike, TODAY + timedelta(days=days), right, style)


def market(spot=100.0, vol=0.25, rate=0.04, div=0.02) -> MarketInputs:
    return MarketInputs(spot, vol, rate, valuation_date=TODAY, dividend_yield=div)


def quantlib_reference(right, strike, days, m: MarketInputs) -> ql.VanillaOption:
    """The same option straight from QuantLib, without quant.options."""
    today = ql.Date(TODAY.day, TODAY.month, TODAY.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()

    def curve(rate):
        return ql.YieldTermStructureHandle(
            ql.FlatForward(today, ql.QuoteHandle(ql.SimpleQuote(rate)), dc)
        )

    vol = ql.BlackConstantVol(
        today, ql.NullCalendar(), ql.QuoteHandle(ql.SimpleQuote(m.volatility)), dc
    )
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(m.spot)),
        curve(m.dividend_yield),
        curve(m.rate),
        ql.BlackVolTermStructureHandle(vol),
    )
    kind = ql.Option.Call if right == "call" else ql.Option.Put
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(kind, strike), ql.EuropeanExercise(today + days)
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return option


CASES = [(right, strike, days) for right in ("call", "put") for strike in (80.0, 100.0, 125.0)
         for days in (7, 91, 365, 730)]  # fmt: skip


@pytest.mark.parametrize(("right", "strike", "days"), CASES)
def test_european_price_and_greeks_are_the_closed_form(right, strike, days):
    m = market()
    got = price_option(contract(right, strike, days), m)
    want = bsm(right, m.spot, strike, days / 365, m.rate, m.dividend_yield, m.volatility)
    assert got.price == pytest.approx(want["price"], abs=1e-6)
    for greek in ("delta", "gamma", "vega", "theta", "rho"):
        assert getattr(got, greek) == pytest.approx(want[greek], abs=1e-8), greek


@pytest.mark.parametrize(("right", "strike", "days"), CASES[::3])
def test_european_greeks_are_quantlibs_analytic_values(right, strike, days):
    m = market(spot=97.5, vol=0.31, rate=0.015, div=0.035)
    got = price_option(contract(right, strike, days), m)
    ref = quantlib_reference(right, strike, days, m)
    assert got.price == pytest.approx(ref.NPV(), abs=1e-10)
    for greek in ("delta", "gamma", "vega", "theta", "rho"):
        assert getattr(got, greek) == pytest.approx(getattr(ref, greek)(), abs=1e-8), greek
    assert got.theta_per_day == pytest.approx(ref.thetaPerDay(), abs=1e-10)


def test_the_hand_checked_at_the_money_value():
    """S=K=100, r=q=0, sigma=20%, one year: d1 = 0.1, d2 = -0.1, so the call is
    100 (2 N(0.1) - 1) = 7.96557 (N(0.1) = 0.5398278 from the table) and the put the same."""
    m = market(vol=0.2, rate=0.0, div=0.0)
    assert price_option(contract("call", 100.0, 365), m).price == pytest.approx(7.96557, abs=1e-5)
    assert price_option(contract("put", 100.0, 365), m).price == pytest.approx(7.96557, abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    spot=st.floats(5, 500),
    moneyness=st.floats(0.5, 2.0),
    vol=st.floats(0.03, 1.5),
    rate=st.floats(-0.02, 0.12),
    div=st.floats(0.0, 0.08),
    days=st.integers(1, 1500),
)
def test_put_call_parity(spot, moneyness, vol, rate, div, days):
    m = market(spot, vol, rate, div)
    strike = spot * moneyness
    call = price_option(contract("call", strike, days), m)
    put = price_option(contract("put", strike, days), m)
    t = days / 365
    forward_gap = spot * math.exp(-div * t) - strike * math.exp(-rate * t)
    assert call.price - put.price == pytest.approx(forward_gap, abs=1e-9 * (spot + strike))
    assert call.delta - put.delta == pytest.approx(math.exp(-div * t), abs=1e-12)
    assert call.gamma == pytest.approx(put.gamma, rel=1e-9, abs=1e-14)


# --- American --------------------------------------------------------------------------------

FD, CRR = OptionPricer(), OptionPricer(american_engine="binomial", binomial_steps=800)


@pytest.mark.parametrize("strike", [80.0, 100.0, 120.0])
@pytest.mark.parametrize("div", [0.0, 0.03])
def test_american_put_is_worth_at_least_the_european(strike, div):
    m = market(rate=0.05, div=div)
    european = price_option(contract("put", strike, 365), m)
    for pricer in (FD, CRR):
        american = price_option(contract("put", strike, 365, "american"), m, pricer)
        assert american.price >= european.price - 1e-9
        assert american.price >= strike - m.spot  # never below immediate exercise


@pytest.mark.parametrize("strike", [85.0, 100.0, 115.0])
def test_american_call_without_dividends_is_the_european_call(strike):
    """Early exercise never pays for a call on a stock that pays nothing (Merton 1973), so the
    engines must give the European value, and bumped vega/rho the analytic ones. The CRR
    tree's vega is looser: moving sigma moves its nodes across the strike (a sawtooth)."""
    m = market(rate=0.05, div=0.0)
    european = price_option(contract("call", strike, 182), m)
    for pricer, tol, vega_tol in ((FD, 2e-3, 2e-4), (CRR, 1e-2, 2e-2)):
        american = price_option(contract("call", strike, 182, "american"), m, pricer)
        assert american.price == pytest.approx(european.price, abs=tol)
        assert american.delta == pytest.approx(european.delta, abs=2e-3)
        assert american.gamma == pytest.approx(european.gamma, abs=2e-3)
        assert american.vega == pytest.approx(european.vega, rel=vega_tol)
        assert american.rho == pytest.approx(european.rho, rel=1e-3)
        assert american.theta == pytest.approx(european.theta, rel=1e-2)


@pytest.mark.parametrize("right", ["call", "put"])
@pytest.mark.parametrize("strike", [80.0, 100.0, 120.0])
def test_finite_differences_and_binomial_agree(right, strike):
    m = market(vol=0.3, rate=0.05, div=0.04)
    c = contract(right, strike, 270, "american")
    fd, crr = price_option(c, m, FD), price_option(c, m, CRR)
    assert fd.price == pytest.approx(crr.price, abs=1e-2)
    assert fd.delta == pytest.approx(crr.delta, abs=1e-2)
    assert fd.vega == pytest.approx(crr.vega, rel=2e-2)  # the tree's vega saw-tooths
    assert fd.rho == pytest.approx(crr.rho, rel=1e-2)


def test_a_deep_in_the_money_put_is_exercised_now():
    """S=60, K=100, r=5%, one year: waiting forgoes interest on 100, so the holder exercises at
    once; the American put is its intrinsic 40, the European about K e^-rT - S = 35.12."""
    m = market(spot=60.0, vol=0.2, rate=0.05, div=0.0)
    european = price_option(contract("put", 100.0, 365), m)
    assert 0 < european.price - (100 * math.exp(-0.05) - 60) < 0.1  # 35.12 + a little time value
    for pricer in (FD, CRR):
        american = price_option(contract("put", 100.0, 365, "american"), m, pricer)
        assert american.price == pytest.approx(40.0, abs=1e-2)
        assert american.price - european.price > 4.5  # the early-exercise premium, 4.82
        assert american.delta == pytest.approx(-1.0, abs=1e-2)


def test_pricing_leaves_quantlibs_evaluation_date_alone():
    ql.Settings.instance().evaluationDate = ql.Date(15, 6, 2021)
    price_option(contract(style="american"), market())
    price_option(contract(), market())
    assert ql.Settings.instance().evaluationDate == ql.Date(15, 6, 2021)


# --- expiry and the book ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("right", "spot", "cash", "exercised"),
    [("call", 110.0, 10.0, True), ("call", 90.0, 0.0, False), ("call", 100.0, 0.0, False),
     ("put", 90.0, 10.0, True), ("put", 110.0, 0.0, False), ("put", 100.0, 0.0, False),
     ("put", 0.0, 100.0, True)],
)  # fmt: skip
def test_settle_at_expiry(right, spot, cash, exercised):
    c = contract(right, 100.0)
    assert settle_at_expiry(c, spot) == cash
    assert exercises_at_expiry(c, spot) is exercised


def test_portfolio_greeks_of_a_hand_computed_book():
    g = OptionGreeks  # price does not enter the greeks
    long_calls = OptionPosition(contract("call"), 2, g(3.0, 0.5, 0.02, 20.0, -5.0, 10.0))
    short_puts = OptionPosition(contract("put"), -3, g(2.0, -0.4, 0.03, 25.0, -4.0, -8.0))
    bbb = OptionContract("BBB", 210.0, TODAY + timedelta(days=30), "call", "american", 10.0)
    bbb_call = OptionPosition(bbb, 1, g(7.0, 0.6, 0.01, 15.0, -3.0, 12.0))
    book = portfolio_greeks(
        [long_calls, short_puts, StockPosition("AAA", -100), bbb_call], {"AAA": 50.0, "BBB": 200.0}
    )
    # AAA: 2*100*0.5 + (-3)*100*(-0.4) - 100 = 120 shares; BBB: 1*10*0.6 = 6 shares
    assert dict(book.delta_units) == pytest.approx({"AAA": 120.0, "BBB": 6.0})
    assert book.delta_currency == pytest.approx(120 * 50 + 6 * 200)  # 7200
    # AAA: 200*0.02 - 300*0.03 = -5; BBB: 10*0.01 = 0.1; x S^2 / 100: -125 + 40
    assert dict(book.gamma_units) == pytest.approx({"AAA": -5.0, "BBB": 0.1})
    assert book.gamma_currency == pytest.approx(-85.0)
    assert book.vega == pytest.approx(200 * 20 - 300 * 25 + 10 * 15)  # -3350
    assert book.theta == pytest.approx(-1000 + 1200 - 30)  # 170 per year
    assert book.theta_per_day == pytest.approx(170 / 365)
    assert book.rho == pytest.approx(2000 + 2400 + 120)  # 4520
    with pytest.raises(ValueError, match="'BBB'"):
        portfolio_greeks([bbb_call], {"AAA": 50.0})


def test_a_delta_hedged_book_has_no_delta():
    m = market()
    short_call = OptionPosition(contract(), -1, price_option(contract(), m))
    hedge = StockPosition("AAA", 100 * short_call.greeks.delta)
    book = portfolio_greeks([short_call, hedge], {"AAA": m.spot})
    assert book.delta_units["AAA"] == pytest.approx(0.0, abs=1e-10)
    assert book.gamma_units["AAA"] < 0 and book.vega < 0 and book.theta > 0  # short option


# --- the delta hedge -------------------------------------------------------------------------


def hedge_pnl(strike, rebalance_every, paths=200, days=63, vol=0.2, rate=0.03, drift=0.08):
    """Sell one call (a unit of the underlying), hold its delta in stock, rebalanced every
    ``rebalance_every`` days, cash at ``rate``; return hedged and unhedged P&L at expiry."""
    rng = np.random.default_rng(20240102)
    dt = 1 / 365
    steps = rng.standard_normal((paths, days))
    spot = 100.0 * np.exp(np.cumsum((drift - vol**2 / 2) * dt + vol * math.sqrt(dt) * steps, 1))
    option = contract("call", strike, days)
    start = price_option(option, market(100.0, vol, rate, 0.0))
    hedged, unhedged = np.empty(paths), np.empty(paths)
    for p in range(paths):
        shares, cash = start.delta, start.price - start.delta * 100.0
        for d in range(1, days):
            cash *= math.exp(rate * dt)
            if d % rebalance_every == 0:
                day = MarketInputs(spot[p, d - 1], vol, rate, TODAY + timedelta(days=d))
                delta = price_option(option, day).delta
                cash -= (delta - shares) * spot[p, d - 1]
                shares = delta
        payoff = settle_at_expiry(option, spot[p, -1])
        hedged[p] = cash * math.exp(rate * dt) + shares * spot[p, -1] - payoff
        unhedged[p] = start.price * math.exp(rate * days * dt) - payoff
    return start, hedged, unhedged


@pytest.mark.parametrize("strike", [95.0, 100.0, 105.0])
def test_a_daily_delta_hedge_removes_most_of_the_risk(strike):
    start, hedged, unhedged = hedge_pnl(strike, 1)
    ratio = hedged.std() / unhedged.std()
    print(
        f"K={strike}: premium {start.price:.4f}, hedged mean {hedged.mean():.4f} "
        f"sd {hedged.std():.4f}, unhedged sd {unhedged.std():.4f}, ratio {ratio:.3f}"
    )
    assert ratio < 0.2
    assert abs(hedged.mean()) < 0.05 * start.price
    # Derman-Kamal: the daily-hedging error's sd is about sqrt(pi/4) vega sigma / sqrt(N)
    derman_kamal = math.sqrt(math.pi / 4) * start.vega * 0.2 * math.sqrt(1 / 63)
    assert 0.6 < hedged.std() / derman_kamal < 1.4


def test_hedging_less_often_leaves_more_risk():
    _, daily, _ = hedge_pnl(100.0, 1, paths=100)
    _, weekly, _ = hedge_pnl(100.0, 7, paths=100)
    print(f"hedged sd daily {daily.std():.4f}, weekly {weekly.std():.4f}")
    assert daily.std() < 0.6 * weekly.std()  # about sqrt(1/7) = 0.38 in theory


# --- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: market(vol=-0.2), "volatility"),
        (lambda: market(vol=0.0), "volatility"),
        (lambda: market(spot=-1.0), "spot"),
        (lambda: market(rate=float("nan")), "rate"),
        (lambda: contract(style="bermudan"), "style"),
        (lambda: contract(right="straddle"), "right"),
        (lambda: contract(strike=0.0), "strike"),
        (lambda: OptionContract("AAA", 100.0, TODAY, "call", "european", -100.0), "multiplier"),
        (lambda: OptionPricer(american_engine="trinomial"), "american_engine"),
        (lambda: OptionPricer(binomial_steps=0), "binomial_steps"),
        (lambda: price_option(contract(days=-1), market()), "expiry"),
        (lambda: price_option(contract(days=0), market()), "expiry"),
        (lambda: settle_at_expiry(contract(), -5.0), "spot"),
    ],
)
def test_invalid_input_names_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()
