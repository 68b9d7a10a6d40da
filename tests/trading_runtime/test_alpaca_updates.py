"""Trade updates as alpaca-py parses them (its ``TradeUpdate``) turned into the simulator's
events by the adapter's tracker: every event kind Alpaca streams, including the ones the
stand-in never sends (a reject after acceptance, replaced, done_for_day, pending_cancel)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from alpaca.trading.models import TradeUpdate

from trading_runtime import events as ev
from trading_runtime.alpaca.updates import Tracker
from trading_runtime.alpaca.wire import order_json
from trading_runtime.domain import Fill, Order, OrderStatus, Side
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel

NOW = datetime(2024, 1, 3, 14, 30, tzinfo=UTC)


def update(order: Order, kind: str, status: OrderStatus | None = None) -> TradeUpdate:
    state = order if status is None else order._evolve(status=status)
    return TradeUpdate(event=kind, order=order_json(state, NOW, NOW), timestamp=NOW)


@pytest.fixture
def tracker() -> Tracker:
    return Tracker({"AAA": Instrument("AAA")}, CostModel())


def sent(tracker: Tracker, accepted: bool) -> Order:
    order = Order("a-1-AAA", "a", "AAA", Side.BUY, 10.0).moved_to(OrderStatus.SUBMITTED)
    if accepted:
        order = order.moved_to(OrderStatus.ACCEPTED)
    tracker.track(order)
    return order


@pytest.mark.parametrize(
    ("accepted", "kind", "status", "want"),
    [
        (False, "rejected", OrderStatus.REJECTED, [ev.ORDER_REJECTED]),
        (True, "rejected", OrderStatus.CANCELLED, [ev.ORDER_CANCELLED]),
        (True, "replaced", OrderStatus.CANCELLED, [ev.ORDER_CANCELLED]),
        (True, "done_for_day", OrderStatus.EXPIRED, [ev.ORDER_EXPIRED]),
        (False, "expired", OrderStatus.EXPIRED, [ev.ORDER_ACCEPTED, ev.ORDER_EXPIRED]),
        (True, "pending_cancel", None, []),
        (True, "new", None, []),  # accepted already: a duplicate
    ],
)
def test_each_alpaca_event_becomes_the_simulators(tracker, accepted, kind, status, want):
    order = sent(tracker, accepted)
    events = tracker.update(update(order, kind, status))
    assert [e.type for e in events] == want
    assert all(e.key for e in events)
    assert tracker.update(update(order, kind, status)) == []  # sent twice: applied once


def test_an_update_of_an_order_never_sent_is_an_alert(tracker):
    stranger = Order("x-9-AAA", "x", "AAA", Side.SELL, 5.0).moved_to(OrderStatus.SUBMITTED)
    [alert] = tracker.update(update(stranger, "new", OrderStatus.ACCEPTED))
    assert (alert.type, alert.kind) == (ev.RISK_ALERT, "unknown_order")


def test_a_fill_the_journal_has_is_not_applied_again_after_a_restart(tracker):
    order = sent(tracker, accepted=True)
    fill = Fill("a-1-AAA:old", "a-1-AAA", "a", "AAA", Side.BUY, 4.0, 10.0, 0.0, NOW, 10.0)
    journal = order.with_fill(fill)
    again = Tracker({"AAA": Instrument("AAA")}, CostModel())
    again.track(journal)  # the restarted process knows the order from its journal
    old = TradeUpdate(event="partial_fill", order=order_json(journal, NOW, NOW), timestamp=NOW,
                      execution_id=uuid.uuid4(), price=10.0, qty=4.0)  # fmt: skip
    assert again.update(old) == []
    later = journal.with_fill(replace(fill, fill_id="x", quantity=6.0))
    new = TradeUpdate(event="fill", order=order_json(later, NOW, NOW), timestamp=NOW,
                      execution_id=uuid.uuid4(), price=10.0, qty=6.0)  # fmt: skip
    [filled] = again.update(new)
    assert filled.fill.quantity == 6.0 and again.known["a-1-AAA"].status == OrderStatus.FILLED
