"""The simulated venue: triggering on highs and lows, gaps, costs, volume limits, time in force."""

from __future__ import annotations

import math

import pytest

from tests.support.venue import DAY0, bar
from trading_runtime import events as ev
from trading_runtime.broker import SimulatedBroker
from trading_runtime.domain import Order, OrderType, Side, TimeInForce
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel


def venue(**costs) -> SimulatedBroker:
    model = CostModel(**{**CostModel.free().model_dump(), **costs})
    return SimulatedBroker(model, {"X": Instrument("X")}, ["X"])


def send(broker, side=Side.BUY, qty=100.0, step=0, **kw) -> str:
    o = Order(f"o{len(broker.received)}", "a", "X", side, qty, created=DAY0, **kw)
    assert broker.submit([o], step)[0].type == ev.ORDER_ACCEPTED
    return o.client_id


def fills(events):
    return [(e.fill.quantity, e.fill.price) for e in events if e.type == ev.ORDER_FILLED]


def test_market_orders_fill_at_the_next_open_not_the_decision_bar():
    b = venue()
    send(b, step=0)
    assert fills(b.on_bar(bar(0, 10, 11, 9, 10))) == []
    assert fills(b.on_bar(bar(1, 10.5, 11, 10, 10.8))) == [(100, 10.5)]
    assert b.working == {}


@pytest.mark.parametrize(
    ("side", "kind", "price", "ohlc", "expected"),
    [
        (Side.BUY, OrderType.LIMIT, {"limit_price": 9.5}, (10, 10.2, 9.4, 10), 9.5),  # touched
        (Side.BUY, OrderType.LIMIT, {"limit_price": 9.5}, (9.0, 9.8, 8.9, 9.5), 9.0),  # gap down
        (Side.BUY, OrderType.LIMIT, {"limit_price": 9.5}, (10, 10.2, 9.6, 10), None),  # missed
        (Side.SELL, OrderType.STOP, {"stop_price": 9.0}, (10, 10, 8.8, 9.2), 9.0),  # hit
        (Side.SELL, OrderType.STOP, {"stop_price": 9.0}, (8.5, 9.1, 8.2, 8.6), 8.5),  # gap
        (Side.BUY, OrderType.STOP, {"stop_price": 11.0}, (10, 10.9, 9.8, 10.5), None),
        (
            Side.BUY,
            OrderType.STOP_LIMIT,
            {"stop_price": 11.0, "limit_price": 11.2},
            (10.5, 11.5, 10.4, 11.3),
            11.0,
        ),
        (
            Side.BUY,
            OrderType.STOP_LIMIT,
            {"stop_price": 11.0, "limit_price": 11.2},
            (11.5, 11.8, 11.4, 11.6),
            None,
        ),  # gapped past the limit: rests, triggered
    ],
)
def test_limits_and_stops_trigger_on_the_bar_range(side, kind, price, ohlc, expected):
    b = venue()
    cid = send(b, side, type=kind, **price)
    out = b.on_bar(bar(1, *ohlc))
    assert fills(out) == ([] if expected is None else [(100, expected)])
    if kind == OrderType.STOP_LIMIT and expected is None:
        assert b.working[cid].triggered and out[0].type == ev.ORDER_TRIGGERED


def test_costs_spread_slippage_and_commission():
    b = venue(half_spread_bps=5, slippage_bps=10, commission_bps=2, commission_per_share=0.01)
    send(b)
    (e,) = b.on_bar(bar(1, 20, 21, 19, 20))
    f = e.fill
    assert f.price == pytest.approx(20 * (1 + 15e-4))
    assert f.fee == pytest.approx(2e-4 * 100 * f.price + 1.0)
    assert f.reference == 20


def test_square_root_impact_grows_with_participation():
    b = venue(slippage="impact", impact_eta=1.0)
    b.observe(bar(0, 10, 10, 10, 10))
    b.observe(bar(1, 10, 10, 10, 10 * math.exp(0.02)))  # one 2% log return: variance seeded
    send(b, qty=10_000, step=1)
    (e,) = b.on_bar(bar(2, 10, 10, 10, 10, v=1e6))
    assert e.fill.price == pytest.approx(10 + 0.02 * 10 * math.sqrt(0.01))


def test_participation_splits_a_large_order_over_bars():
    b = venue(participation=0.1)
    cid = send(b, qty=2500)
    assert fills(b.on_bar(bar(1, 10, 10, 10, 10, v=10_000))) == [(1000, 10)]
    assert fills(b.on_bar(bar(2, 10, 10, 10, 10, v=10_000))) == [(1000, 10)]
    assert fills(b.on_bar(bar(3, 10, 10, 10, 10, v=10_000))) == [(500, 10)]
    assert cid not in b.working


def test_ioc_keeps_what_filled_and_fok_all_or_nothing():
    b = venue(participation=0.1)
    send(b, qty=2500, tif=TimeInForce.IOC)
    out = b.on_bar(bar(1, 10, 10, 10, 10, v=10_000))
    assert fills(out) == [(1000, 10)] and out[-1].type == ev.ORDER_CANCELLED
    send(b, qty=2500, tif=TimeInForce.FOK, step=1)
    out = b.on_bar(bar(2, 10, 10, 10, 10, v=10_000))
    assert fills(out) == [] and out[-1].type == ev.ORDER_CANCELLED


def test_day_orders_expire_and_latency_delays_eligibility():
    b = venue(latency_bars=1)
    send(b, type=OrderType.LIMIT, limit_price=9.0, tif=TimeInForce.DAY)
    assert b.on_bar(bar(1, 10, 10, 9.5, 10)) == []  # not live yet (latency)
    assert b.on_bar(bar(2, 10, 10, 9.5, 10)) == []  # live, not filled
    (e,) = b.on_bar(bar(3, 10, 10, 8.0, 10))  # next day: gone before it could fill
    assert e.type == ev.ORDER_EXPIRED


def test_a_resent_order_is_known_to_the_venue(tmp_path):
    log = tmp_path / "venue.jsonl"
    b = venue()
    b.venue_log = log
    send(b)
    again = SimulatedBroker(b.costs, b.instruments, ["X"], log)
    o = Order("o0", "a", "X", Side.BUY, 100.0, created=DAY0)
    assert again.submit([o], 0)[0].type == ev.ORDER_ACCEPTED
    assert again.duplicates == 1 and len(log.read_text().splitlines()) == 1
