"""Property: whatever the stand-in does wrong (fills split in two, every update sent twice, a
bar's updates reversed, the stream dropped at some bar), every order ends at the adapter as it
ends at the simulator on the same bars: the same filled quantity, the same final status, each
fill applied once."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.alpaca import KEY, SECRET, daily_bars, wait_for
from trading_runtime import events as ev
from trading_runtime.alpaca.desk import Misbehaviour
from trading_runtime.alpaca.execution import AlpacaExecution
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.broker import SimulatedBroker
from trading_runtime.domain import Order, OrderStatus, OrderType, Side, TimeInForce
from trading_runtime.fix.reports import advanced
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel
from warehouse.settings import AlpacaSettings

SYMBOLS = ["AAA", "BBB"]
INSTRUMENTS = {s: Instrument(s) for s in SYMBOLS}
COSTS = CostModel(participation=0.1, latency_bars=0)
BARS = 6

orders = st.lists(
    st.tuples(
        st.integers(0, 2),  # the bar it is sent after
        st.sampled_from(SYMBOLS),
        st.sampled_from(list(Side)),
        st.integers(1, 30).map(lambda n: n * 10.0),
        st.sampled_from([None, 0.97, 1.03]),  # market, or a limit around the last close
        st.sampled_from([TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC]),
    ),
    min_size=1,
    max_size=6,
)


def final(events: list[ev.Event], sent: dict[str, Order]) -> dict[str, tuple]:
    """Each order's (status, filled) after ``events``; fill ids must be unique."""
    fills = [e.fill.fill_id for e in events if e.type == ev.ORDER_FILLED]
    assert len(fills) == len(set(fills))
    state = {cid: o.moved_to(OrderStatus.SUBMITTED) for cid, o in sent.items()}
    for e in events:
        cid = e.fill.client_id if e.type == ev.ORDER_FILLED else getattr(e, "client_id", None)
        if cid in state and e.type != ev.ORDER_TRIGGERED:
            state[cid] = advanced(state[cid], e)
    return {cid: (o.status, round(o.filled, 9)) for cid, o in state.items()}


def orders_at(plan: list[tuple], k: int, cross) -> list[Order]:
    """The plan's orders sent after bar ``k`` (limits priced off its close)."""
    out = []
    for n, (at, symbol, side, qty, limit, tif) in enumerate(plan):
        if at != k:
            continue
        kind = {}
        if limit is not None:
            price = round(float(cross.close[SYMBOLS.index(symbol)]) * limit, 2)
            kind = {"type": OrderType.LIMIT, "limit_price": price}
        out.append(Order(f"a-{n}-{symbol}", "a", symbol, side, qty, tif=tif, **kind))
    return out


@pytest.mark.slow
@given(orders, st.booleans(), st.booleans(), st.booleans(), st.sampled_from([None, 2, 3]))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_order_ends_as_at_the_simulator(plan, split, duplicate, reorder, drop_at):
    bad = Misbehaviour(split_fills=split, duplicate_updates=duplicate, reorder_updates=reorder)
    market = Market(daily_bars(SYMBOLS, BARS, seed=3), COSTS, misbehaviour=bad)
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, SYMBOLS)
    sent: dict[str, Order] = {}
    got, want = [], []
    with StandIn(market, KEY, SECRET) as standin:
        where = AlpacaSettings(key_id=KEY, secret_key=SECRET, trading_url=standin.url,
                               stream_url=standin.stream_url)  # fmt: skip
        with AlpacaExecution(INSTRUMENTS, COSTS, where) as alpaca:
            wait_for(lambda: market._update_listeners)
            for k in range(BARS):
                if k == drop_at:
                    market.drop_streams()
                    wait_for(lambda: not market._update_listeners)
                    market.advance()  # these updates are lost: read back after the reconnect
                    wait_for(lambda: alpaca.connects == 2)
                else:
                    market.advance()
                    wait_for(lambda: alpaca.received == market.updates_sent)
                cross = market.cross_section(k)
                got += alpaca.on_bar(cross)
                want += simulator.on_bar(cross)
                simulator.observe(cross)
                now = orders_at(plan, k, cross)
                sent.update((o.client_id, o) for o in now)
                got += alpaca.submit(now, k)
                want += simulator.submit(now, k)
            wait_for(lambda: alpaca.connects >= 1)
            got += alpaca.on_bar(market.cross_section(BARS - 1))  # a read-back still due
    assert final(got, sent) == final(want, sent)
