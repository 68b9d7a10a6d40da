"""Futures in the pre-trade risk engine: an order needs its initial margin in the free cash (not
its notional), and a per-asset-class gross limit; every denial names its numbers. One account of
100,000 (tests/support/book.py) trading ES (50 per point, 12,000 margin a contract) at 4,000."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bars import hand_bars, load_bars
from tests.support.book import INSTRUMENTS, TS, close_bar, new_book, send
from trading_runtime import events as ev
from trading_runtime.domain import Fill, Order, Side
from trading_runtime.instruments import Instrument, load_instruments
from trading_runtime.risk import RiskEngine

ES = Instrument("ESH5", asset_class="future", tick_size=0.25, multiplier=50, initial_margin=12e3)
NQ = Instrument("NQH5", asset_class="future", tick_size=0.25, multiplier=20)  # no margin: 10%
ALL = {**INSTRUMENTS, "ESH5": ES, "NQH5": NQ}
PRICES = {"A": 100.0, "B": 100.0, "C": 100.0, "ESH5": 4000.0, "NQH5": 15000.0}
OPEN = dict(  # only the checks under test: no notional, weight or exposure caps, no fee reserve
    max_order_notional=None,
    max_position_notional=None,
    max_symbol_weight=None,
    max_sector_weight=None,
    max_gross_exposure=None,
    max_net_exposure=None,
    fee_reserve_bps=0,
)


def book_with(held: dict[str, float] | None = None, working: dict[str, float] | None = None,
              prices: dict[str, float] | None = None, **limits):  # fmt: skip
    """A book after bar 0 (PRICES) with ``held`` filled at those prices, closed at bar 1 on
    ``prices``, then ``working`` sent and not filled."""
    book = new_book(**{**OPEN, **limits})
    close_bar(book, 0, PRICES)
    for n, (symbol, quantity) in enumerate((held or {}).items()):
        order = Order(f"h{n}", "a", symbol, Side.BUY if quantity > 0 else Side.SELL,
                      abs(quantity), created=TS)  # fmt: skip
        send(book, order)
        fill(book, order, PRICES[symbol])
    close_bar(book, 1, {**PRICES, **(prices or {})})
    for n, (symbol, quantity) in enumerate((working or {}).items()):
        send(book, order_of(symbol, quantity, f"w{n}"))
    return book


def fill(book, order: Order, price: float) -> None:
    """Fill ``order`` at ``price`` without a fee, at its instrument's multiplier."""
    multiplier = ALL[order.symbol].multiplier
    done = Fill(f"f{order.client_id}", order.client_id, "a", order.symbol, order.side,
                order.quantity, price, 0.0, TS, price, multiplier)  # fmt: skip
    book.apply(ev.OrderFilled(done))


def order_of(symbol: str, quantity: float, client_id: str = "x") -> Order:
    side = Side.BUY if quantity > 0 else Side.SELL
    return Order(client_id, "a", symbol, side, abs(quantity), created=TS)


def denial(book, symbol: str, quantity: float) -> str | None:
    price = book.marks[symbol]
    found = RiskEngine(ALL).check(order_of(symbol, quantity), book, price)
    return None if found is None else str(found)


def margin_denial(contracts, per, fees, free) -> str:
    return (
        f"futures_margin: needs {contracts * per + fees:,.2f} ({contracts:g} contracts x"
        f" {per:,.2f} initial margin + {fees:,.2f} fee reserve), {free:,.2f} cash free"
    )


@pytest.mark.parametrize(
    ("setup", "symbol", "passes", "denied", "message"),
    [
        # flat: 100,000 free; 8 x 12,000 = 96,000 fits, 9 x 12,000 = 108,000 does not
        ({}, "ESH5", 8, 9, margin_denial(9, 12_000, 0, 100_000)),
        # a short needs the same margin
        ({"allow_short": True}, "ESH5", -8, -9, margin_denial(9, 12_000, 0, 100_000)),
        # 5 held: the book paid 1,000,000 of notional (cash -900,000) but 100,000 - 60,000 is
        # free
        ({"held": {"ESH5": 5}}, "ESH5", 3, 4, margin_denial(4, 12_000, 0, 40_000)),
        # and 2 more working: 100,000 - 7 x 12,000 = 16,000
        ({"held": {"ESH5": 5}, "working": {"ESH5": 2}}, "ESH5", 1, 2,
         margin_denial(2, 12_000, 0, 16_000)),
        # a rise to 4,100 adds 5 x 100 x 50 = 25,000 of variation: 125,000 - 60,000 free
        ({"held": {"ESH5": 5}, "prices": {"ESH5": 4100.0}}, "ESH5", 5, 6,
         margin_denial(6, 12_000, 0, 65_000)),
        # flipping 5 long to 9 short adds 4 contracts of margin; 7 short adds 2
        ({"held": {"ESH5": 5}, "allow_short": True}, "ESH5", -12, -14,
         margin_denial(4, 12_000, 0, 40_000)),
        # a working buy of 300 A at 100 commits 30,000 of the cash
        ({"working": {"A": 300}}, "ESH5", 5, 6, margin_denial(6, 12_000, 0, 70_000)),
        # no margin on the instrument: 10% of 15,000 x 20 = 30,000 a contract
        ({}, "NQH5", 3, 4, margin_denial(4, 30_000, 0, 100_000)),
        # the fee reserve on the notional: 100 bps of 8 x 200,000 = 16,000 on top of 96,000
        ({"fee_reserve_bps": 100}, "ESH5", 7, 8, margin_denial(8, 12_000, 16_000, 100_000)),
        # a margin account: 400 A held ties up 50% of 40,000, 80,000 is free
        ({"held": {"A": 400}, "cash_account": False, "initial_margin": 0.5}, "ESH5", 6, 7,
         margin_denial(7, 12_000, 0, 80_000)),
    ],
)  # fmt: skip
def test_futures_need_their_initial_margin_in_free_cash(setup, symbol, passes, denied, message):
    setup = dict(setup)
    book = book_with(setup.pop("held", None), setup.pop("working", None),
                     setup.pop("prices", None), **setup)  # fmt: skip
    assert denial(book, symbol, passes) is None
    assert denial(book, symbol, denied) == message


def test_equity_orders_see_the_futures_margin_not_the_notional_paid():
    # 5 ES held: cash in the book is -900,000, yet 100,000 - 60,000 margin is free for stock
    book = book_with({"ESH5": 5})
    assert book.accounts["a"].cash == pytest.approx(-900_000)
    assert denial(book, "A", 400) is None
    assert denial(book, "A", 500) == "cash: needs 50,000.00 with fees, 40,000.00 free"
    # margin account: 50% of 80,000 of stock + 60,000 of futures margin is the 100,000 equity
    book = book_with({"ESH5": 5}, cash_account=False, initial_margin=0.5)
    assert denial(book, "A", 800) is None
    assert denial(book, "A", 810) == "margin: needs 100,500.00 margin, equity 100,000.00"


def test_orders_approved_in_the_same_bar_use_up_the_margin():
    book, risk = book_with(), RiskEngine(ALL)
    first = order_of("ESH5", 5, "first")
    assert risk.check(first, book, 4000.0) is None
    send(book, first)
    assert str(risk.check(order_of("ESH5", 4), book, 4000.0)) == margin_denial(4, 12_000, 0, 40_000)
    # another future: the 5 ES working hold 60,000 of the 100,000
    assert str(risk.check(order_of("NQH5", 2), book, 15_000.0)) == margin_denial(
        2, 30_000, 0, 40_000
    )
    assert risk.check(order_of("NQH5", 1), book, 15_000.0) is None
    assert risk.check(order_of("ESH5", -3), book, 4000.0) is None  # offsets a working order


@pytest.mark.parametrize(
    ("setup", "symbol", "passes", "denied", "message"),
    [
        # 2 ES = 400,000 = 4x the 100,000 equity; a third makes 6x
        ({}, "ESH5", 2, 3, "future gross would be 6.00x equity (now 0.00x, limit 5.00x)"),
        ({"held": {"ESH5": 2}}, "ESH5", 0, 1,
         "future gross would be 6.00x equity (now 4.00x, limit 5.00x)"),
        ({"allow_short": True}, "ESH5", -2, -3,
         "future gross would be 6.00x equity (now 0.00x, limit 5.00x)"),
        # the limit of another class does not touch a future, and a class is capped alone
        ({"held": {"ESH5": 2}}, "A", 600, 0, None),
        ({"caps": {"equity": 0.5}}, "A", 500, 600,
         "equity gross would be 0.60x equity (now 0.00x, limit 0.50x)"),
    ],
)  # fmt: skip
def test_asset_class_gross_limit(setup, symbol, passes, denied, message):
    setup = dict(setup)
    caps = setup.pop("caps", {"future": 5.0})
    book = book_with(setup.pop("held", None), **setup, max_gross_by_asset_class=caps)
    if passes:
        assert denial(book, symbol, passes) is None
    if denied:
        assert denial(book, symbol, denied) == f"asset_class_exposure: {message}"


def test_asset_class_limit_counts_orders_approved_in_the_bar():
    book, risk = book_with(max_gross_by_asset_class={"future": 5.0}), RiskEngine(ALL)
    first = order_of("ESH5", 2, "first")
    assert risk.check(first, book, 4000.0) is None
    send(book, first)
    assert str(risk.check(order_of("ESH5", 1), book, 4000.0)) == (
        "asset_class_exposure: future gross would be 6.00x equity (now 4.00x, limit 5.00x)"
    )


step = st.tuples(
    st.fixed_dictionaries(
        {"A": st.floats(50, 150), "ESH5": st.floats(3000, 5000), "NQH5": st.floats(1e4, 2e4)}
    ),
    st.lists(st.tuples(st.sampled_from(["A", "ESH5", "NQH5"]), st.integers(-6, 6)), max_size=5),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=12))
def test_no_sequence_of_orders_ties_up_more_margin_than_the_cash(steps):
    """Orders checked one after another, the approved ones filled at the decision price: after
    a bar in which a position grew, stock paid for plus futures margin never exceed the cash
    as if futures moved no notional (equity less the stock's value)."""
    book = new_book(**{**OPEN, "allow_short": True, "max_order_quantity": 2_000})
    risk, n = RiskEngine(ALL), 0
    for k, (prices, proposals) in enumerate(steps):
        close_bar(book, k, {**PRICES, **prices})
        account = book.accounts["a"]
        before = {s: account.quantity(s) for s in prices}
        approved = []
        for symbol, lots in proposals:
            n += 1
            quantity = 100 * lots if symbol == "A" else lots
            if quantity == 0 or (symbol == "A" and quantity < 0):
                continue
            order = order_of(symbol, quantity, f"o{n}")
            if risk.check(order, book, prices[symbol]) is None:
                send(book, order)
                approved.append(order)
        for order in approved:
            fill(book, order, prices[order.symbol])
        after = {s: account.quantity(s) for s in prices}
        if not any(abs(after[s]) > abs(before[s]) + 1e-9 for s in prices):
            continue
        equity = account.equity_at(prices)
        stock = after["A"] * prices["A"]
        margin = abs(after["ESH5"]) * 12_000 + abs(after["NQH5"]) * 0.1 * prices["NQH5"] * 20
        assert stock + margin <= equity + 1e-6


def test_the_warehouse_keeps_a_contracts_margin(db_url):
    """market.instruments.initial_margin (migration 0016) reaches the Instrument: null for a
    stock, the figure set for a future."""
    load_bars(db_url, hand_bars([("2024-01-02", 10, 11, 9, 10.5, 100)], "AAA"))
    load_bars(db_url, hand_bars([("2024-01-02", 4000, 4010, 3990, 4005, 100)], "ESH5"))
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "update market.instruments set asset_class = 'future', multiplier = 50,"
            " initial_margin = 12000 where symbol = 'ESH5'"
        )
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("update market.instruments set initial_margin = 0 where symbol = 'AAA'")
    found = load_instruments(db_url)
    assert found["AAA"].initial_margin is None
    assert (found["ESH5"].asset_class, found["ESH5"].initial_margin) == ("future", 12_000.0)
