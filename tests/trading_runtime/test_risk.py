"""The pre-trade risk engine: no sequence of orders and prices breaches a configured limit, and
each check denies with its reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.book import INSTRUMENTS, LIMITS, TS, close_bar, fill, new_book, send, trade
from trading_runtime.book import TradingState
from trading_runtime.domain import Order, OrderType, Side
from trading_runtime.risk import RiskEngine
from trading_runtime.settings import RiskLimits

step = st.tuples(
    st.fixed_dictionaries({s: st.floats(5, 200) for s in INSTRUMENTS}),  # the bar's prices
    st.lists(  # orders the strategy proposes after it
        st.tuples(
            st.sampled_from(sorted(INSTRUMENTS)),
            st.sampled_from(list(Side)),
            st.integers(1, 400).map(lambda k: 10.0 * k),
        ),
        max_size=6,
    ),
    st.sampled_from(list(TradingState)),
)


# found by this test: a buy of 2,010 offsetting two working sells passed as "reducing"
OFFSETS_WORKING_ORDERS = [({"A": 5.0, "B": 5.0, "C": 5.0},
                           [("B", Side.SELL, 20.0), ("B", Side.SELL, 2000.0),
                            ("B", Side.BUY, 2010.0)], TradingState.ACTIVE)]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25), st.booleans())
@example(OFFSETS_WORKING_ORDERS, True)
def test_no_sequence_of_orders_and_prices_breaches_a_limit(steps, allow_short):
    """As in the engine: after each bar, orders are checked one after another against the
    book with the earlier ones working; the approved ones fill at the next bar's open, here at
    the same price (no move between decision and fill, so a breach could only be the engine's).
    """
    book, risk = new_book(allow_short=allow_short), RiskEngine(INSTRUMENTS)
    limits = RiskLimits(**{**LIMITS, "allow_short": allow_short})
    n = 0
    for k, (prices, proposals, state) in enumerate(steps):
        close_bar(book, k, prices)
        account = book.accounts["a"]
        account.state = state
        before = {s: account.quantity(s) for s in INSTRUMENTS}
        equity = account.equity_at(prices)  # what limits are judged against (fees come after)
        approved = []
        for symbol, side, qty in proposals:
            n += 1
            order = Order(f"o{n}", "a", symbol, side, qty, created=TS)
            if risk.check(order, book, prices[symbol]) is None:
                send(book, order)
                approved.append(order)
        assert state != TradingState.HALTED or not approved
        assert len(approved) <= limits.max_orders_per_bar
        for order in approved:
            fill(book, order, prices[order.symbol], order.client_id)
        after = {s: account.quantity(s) for s in INSTRUMENTS}
        grew = {s for s in INSTRUMENTS
                if abs(after[s]) > abs(before[s]) + 1e-9 or after[s] * before[s] < 0}  # fmt: skip
        assert not (grew and state == TradingState.REDUCING)
        assert allow_short or min(after.values()) >= 0
        for order in approved:  # an order that only reduces a position is never held back
            if order.symbol in grew:
                assert order.quantity <= limits.max_order_quantity
                assert order.quantity * prices[order.symbol] <= limits.max_order_notional + 1e-6
        if not grew:  # covering a short that prices ran up may overdraw cash, and reducing
            continue  # orders may leave a limit that prices broke still broken
        assert account.cash >= -1e-6
        values = {s: after[s] * prices[s] for s in INSTRUMENTS}
        gross, net = sum(map(abs, values.values())), abs(sum(values.values()))
        for symbol in grew:
            assert abs(values[symbol]) <= limits.max_position_notional + 1e-6
            assert abs(values[symbol]) <= limits.max_symbol_weight * equity + 1e-6
        if grew & {"A", "B"}:
            tech = abs(values["A"]) + abs(values["B"])
            assert tech <= limits.max_sector_weight * equity + 1e-6
        assert gross <= limits.max_gross_exposure * equity + 1e-6
        assert net <= limits.max_net_exposure * equity + 1e-6


@pytest.mark.parametrize(
    ("order", "limits", "check"),
    [
        (dict(quantity=3000.0), {}, "max_order_quantity"),
        (dict(quantity=1000.0), {"max_order_quantity": None}, "max_order_notional"),
        (dict(quantity=150.0), {}, "concentration"),
        (dict(side=Side.SELL, quantity=10.0, symbol="B"), {}, "short"),
        (dict(quantity=15.0, symbol="C"), {}, "lot_size"),
        (dict(quantity=10.0, type=OrderType.LIMIT, limit_price=130.0), {}, "price_band"),
        (dict(quantity=10.0, type=OrderType.LIMIT, limit_price=100.005), {}, "tick_size"),
        (dict(quantity=10.0, symbol="B", reduce_only=True), {}, "reduce_only"),
        (
            dict(quantity=800.0),
            {
                "max_symbol_weight": None,
                "max_order_notional": None,
                "max_position_notional": None,
                "max_gross_exposure": 5,
                "max_net_exposure": 5,
                "max_sector_weight": 5,
            },
            "cash",
        ),
        (dict(quantity=250.0, symbol="B"), {"max_sector_weight": 0.5}, "sector_concentration"),
    ],
)
def test_each_check_denies_with_its_reason(order, limits, check):
    book = new_book(**limits)
    close_bar(book, 0, {"A": 100.0, "B": 100.0, "C": 100.0})
    trade(book, Order("held", "a", "A", Side.BUY, 300.0, created=TS), 100.0, 0)
    close_bar(book, 1, {"A": 100.0, "B": 100.0, "C": 100.0})
    kwargs = {
        "client_id": "x",
        "account": "a",
        "symbol": "A",
        "side": Side.BUY,
        "created": TS,
        **order,
    }
    denial = RiskEngine(INSTRUMENTS).check(Order(**kwargs), book, 100.0)
    assert denial is not None and denial.check == check, denial
    assert str(denial).startswith(check + ": ")


def test_halted_and_reducing_states():
    book = new_book()
    close_bar(book, 0, {"A": 100.0, "B": 100.0, "C": 100.0})
    trade(book, Order("held", "a", "A", Side.BUY, 100.0, created=TS), 100.0, 0)
    risk = RiskEngine(INSTRUMENTS)
    buy = Order("b", "a", "A", Side.BUY, 10.0, created=TS)
    sell = Order("s", "a", "A", Side.SELL, 10.0, created=TS)
    book.accounts["a"].state = TradingState.REDUCING
    assert risk.check(buy, book, 100.0).check == "trading_state"
    assert risk.check(sell, book, 100.0) is None
    book.accounts["a"].state = TradingState.HALTED
    assert risk.check(sell, book, 100.0).check == "trading_state"
