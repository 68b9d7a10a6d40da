"""The order state machine and instrument rounding."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime import events as ev
from trading_runtime.domain import (
    TRANSITIONS,
    Fill,
    IllegalTransition,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from trading_runtime.instruments import Instrument, round_price, round_quantity

TS = datetime(2024, 1, 2, tzinfo=UTC)
TERMINAL = {s for s, nxt in TRANSITIONS.items() if not nxt}


def order(**kw) -> Order:
    return Order(
        **{
            "client_id": "a-1",
            "account": "a",
            "symbol": "X",
            "side": Side.BUY,
            "quantity": 100.0,
            **kw,
        }
    )


def fill(quantity: float, price: float = 10.0, side: Side = Side.BUY) -> Fill:
    return Fill("f", "a-1", "a", "X", side, quantity, price, 0.0, TS, price)


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=12))
def test_only_listed_transitions_are_allowed(path):
    current = order()
    for status in path:
        allowed = status in TRANSITIONS[current.status]
        if allowed:
            current = current.moved_to(status)
            assert current.status == status
        else:
            with pytest.raises(IllegalTransition):
                current.moved_to(status)


def test_terminal_states_accept_nothing():
    assert {
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.DENIED,
    } == TERMINAL
    for status in TERMINAL:
        for target in OrderStatus:
            with pytest.raises(IllegalTransition):
                order(status=status).moved_to(target)


@given(st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_fills_never_exceed_the_quantity(sizes):
    current = order().moved_to(OrderStatus.SUBMITTED).moved_to(OrderStatus.ACCEPTED)
    total = 0
    for size in sizes:
        if total + size > 100:
            with pytest.raises(IllegalTransition):
                current.with_fill(fill(size))
            break
        current = current.with_fill(fill(size))
        total += size
        expected = OrderStatus.FILLED if total == 100 else OrderStatus.PARTIALLY_FILLED
        assert current.status == expected and current.filled == total
        if total == 100:
            break


def test_orders_are_checked_when_made():
    with pytest.raises(ValueError, match="quantity must be positive"):
        order(quantity=0.0)
    with pytest.raises(ValueError, match="needs limit_price"):
        order(type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="needs stop_price"):
        order(type=OrderType.STOP_LIMIT, limit_price=10.0)
    payload = order(type=OrderType.STOP, stop_price=9.5, created=TS).to_payload()
    assert Order.from_payload(payload) == order(type=OrderType.STOP, stop_price=9.5, created=TS)


def test_positions_at_average_cost():
    p = Position("X").with_fill(fill(100, 10.0)).with_fill(fill(100, 12.0))
    assert (p.quantity, p.avg_price) == (200, 11.0)
    p = p.with_fill(fill(50, 13.0, Side.SELL))
    assert (p.quantity, p.avg_price, p.realized) == (150, 11.0, 100.0)
    p = p.with_fill(fill(250, 9.0, Side.SELL))  # through zero: short 100 at 9
    assert (p.quantity, p.avg_price, p.realized) == (-100, 9.0, 100.0 - 300.0)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([1.0, 10.0, 100.0, 0.001]))
def test_quantities_are_whole_lots_never_more_than_asked(quantity, lot):
    rounded = round_quantity(Instrument("X", lot_size=lot), quantity)
    assert abs(rounded) <= abs(quantity) + 1e-9
    assert abs(rounded / lot - round(rounded / lot)) < 1e-6
    assert abs(quantity) - abs(rounded) < lot + 1e-9


@given(st.floats(0.01, 1e5), st.sampled_from([0.01, 0.05, 0.25, 1.0]))
def test_prices_land_on_ticks(price, tick):
    rounded = round_price(Instrument("X", tick_size=tick), price)
    assert abs(rounded / tick - round(rounded / tick)) < 1e-6
    assert abs(rounded - price) <= tick / 2 + 1e-9


def test_a_decision_payload_is_its_fields_and_reads_back():
    lineage = ev.ModelLineage("qtis-xgboost", "3", "champion", "run-1", "ab" * 32)
    for decision in (
        ev.Decision("model", 0.5, 100.0, -20.0, 0.0123, 5, lineage),
        ev.Decision("sma-cross", 1.0, 100.0, 0.0),
    ):
        assert decision.to_payload() == asdict(decision)
        assert list(decision.to_payload()) == [f.name for f in fields(ev.Decision)]
        assert ev.Decision.from_payload(decision.to_payload()) == decision
