"""Model-priced option chains and the implied volatility: symbols, closes that are QuantLib's
prices (exercise value at expiry, nothing after), and volatilities recovered from prices."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant.option_chain import ChainMarket, chain_closes, gbm_closes, option_symbol, strip
from quant.options import (
    MarketInputs,
    OptionContract,
    OptionPricer,
    implied_volatility,
    price_option,
)

CALL = OptionContract("SYN", 100.0, date(2024, 1, 19), "call", "european")


def test_symbols_are_underlying_expiry_right_strike():
    assert option_symbol(CALL) == "SYN240119C100"
    assert option_symbol(replace(CALL, right="put", strike=97.5)) == "SYN240119P97.5"
    assert [option_symbol(c) for c in strip("SYN", date(2024, 1, 19), [95, 105])] == [
        "SYN240119C95", "SYN240119C105", "SYN240119P95", "SYN240119P105",
    ]  # fmt: skip


def test_gbm_closes_are_seeded_business_days_from_the_spot():
    closes = gbm_closes("2024-01-01", 10, spot=50.0, volatility=0.3, seed=5)
    assert closes.iloc[0] == 50.0 and len(closes) == 10
    assert (closes.index.dayofweek < 5).all()
    assert closes.equals(gbm_closes("2024-01-01", 10, spot=50.0, volatility=0.3, seed=5))
    assert not closes.equals(gbm_closes("2024-01-01", 10, spot=50.0, volatility=0.3, seed=6))


def test_chain_closes_are_quantlib_prices_then_the_exercise_value_then_nothing():
    dates = pd.bdate_range("2024-01-15", "2024-01-23")  # expiry Friday the 19th
    underlying = pd.Series([98.0, 99.0, 101.0, 102.0, 103.5, 104.0, 99.0], index=dates)
    put = replace(CALL, right="put")
    closes = chain_closes(underlying, [CALL, put], ChainMarket(0.25, rate=0.03))
    monday = price_option(CALL, MarketInputs(98.0, 0.25, 0.03, date(2024, 1, 15)))
    assert closes.loc["2024-01-15", "SYN240119C100"] == monday.price
    assert closes.loc["2024-01-19", "SYN240119C100"] == pytest.approx(3.5)  # 103.5 - 100
    assert closes.loc["2024-01-19", "SYN240119P100"] == 0.0  # out of the money
    assert closes.loc["2024-01-22":].isna().all().all()  # expired
    # a volatility series: each day's price at that day's volatility
    vols = pd.Series(np.linspace(0.2, 0.3, len(dates)), index=dates)
    varying = chain_closes(underlying, [CALL], ChainMarket(vols, rate=0.03))
    tuesday = price_option(CALL, MarketInputs(99.0, vols.iloc[1], 0.03, date(2024, 1, 16)))
    assert varying.iloc[1, 0] == tuesday.price


def test_chain_inputs_are_checked():
    with pytest.raises(ValueError, match="one underlying"):
        chain_closes(pd.Series([1.0], index=pd.bdate_range("2024-01-02", periods=1)),
                     [CALL, replace(CALL, underlying="OTHER")], ChainMarket(0.2))  # fmt: skip
    with pytest.raises(ValueError, match="positive closes"):
        chain_closes(pd.Series([], dtype=float), [CALL], ChainMarket(0.2))


@pytest.mark.parametrize("right", ["call", "put"])
@pytest.mark.parametrize("strike", [80.0, 100.0, 125.0])
@pytest.mark.parametrize("vol", [0.08, 0.25, 0.9])
def test_implied_volatility_recovers_the_pricing_volatility_european(right, strike, vol):
    contract = OptionContract("X", strike, date(2024, 7, 1), right, "european")
    market = MarketInputs(102.0, vol, 0.04, date(2024, 1, 2), dividend_yield=0.01)
    price = price_option(contract, market).price
    found = implied_volatility(contract, price, replace(market, volatility=0.5))
    assert found == pytest.approx(vol, abs=1e-9)


@pytest.mark.parametrize("engine", ["fd", "binomial"])
def test_implied_volatility_american_reprices_with_the_same_engine(engine):
    pricer = OptionPricer(american_engine=engine, binomial_steps=200)
    put = OptionContract("X", 110.0, date(2024, 7, 1), "put", "american")
    market = MarketInputs(100.0, 0.3, 0.05, date(2024, 1, 2))
    price = price_option(put, market, pricer).price
    bounds = {"min_vol": 0.05} if engine == "binomial" else {}  # the tree: 0.0001 cannot price
    found = implied_volatility(put, price, replace(market, volatility=0.2), pricer, **bounds)
    assert price_option(put, replace(market, volatility=found), pricer).price == pytest.approx(
        price, abs=1e-8
    )
    assert found == pytest.approx(0.3, abs=1e-4 if engine == "fd" else 1e-2)


def test_a_price_no_volatility_gives_is_refused_with_the_bounds():
    market = MarketInputs(110.0, 0.2, 0.0, date(2024, 1, 2))
    with pytest.raises(ValueError, match=r"no volatility in \[0.0001, 5.0\]"):
        call = OptionContract("X", 100.0, date(2024, 7, 1), "call", "european")
        implied_volatility(call, 5.0, market)  # below the intrinsic value, 10
    tree = OptionPricer(american_engine="binomial", binomial_steps=200)
    american = OptionContract("X", 110.0, date(2024, 7, 1), "put", "american")
    with pytest.raises(ValueError, match="binomial engine cannot price at min_vol"):
        implied_volatility(american, 12.0, MarketInputs(100.0, 0.3, 0.05, date(2024, 1, 2)), tree)
    with pytest.raises(ValueError, match="price must be > 0"):
        implied_volatility(replace(CALL, expiry=date(2024, 7, 1)), 0.0, market)
