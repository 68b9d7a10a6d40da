"""AlpacaExecution (real alpaca-py TradingClient and TradingStream) against the stand-in
market: fills equal to the simulator's on the same bars (partial fills by volume, DAY expiry),
rejects, cancels, updates split, duplicated and reordered applied once, a dropped stream whose
missed news is read back, a restart that sends nothing twice, 429s, the broker's state."""

from __future__ import annotations

import inspect
import logging

import pytest

from tests.support.alpaca import KEY, SECRET, daily_bars, wait_for
from tests.support.service import free_port
from tests.support.venue_costs import COSTS
from trading_runtime import events as ev
from trading_runtime.alpaca.execution import AlpacaError, AlpacaExecution
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.book import Book
from trading_runtime.broker import SimulatedBroker
from trading_runtime.domain import Order, OrderStatus, OrderType, Side, TimeInForce
from trading_runtime.execution import Execution
from trading_runtime.instruments import Instrument
from trading_runtime.reconcile import Reconciler
from warehouse.settings import AlpacaSettings

SYMBOLS = ["AAA", "BBB", "CCC"]
INSTRUMENTS = {s: Instrument(s) for s in SYMBOLS}


def bars():
    frame = daily_bars(SYMBOLS, 12)
    frame.loc[frame["symbol"] == "CCC", "volume"] = 500.0  # 50 shares a bar: partial fills
    return frame


@pytest.fixture
def standin():
    with StandIn(Market(bars(), COSTS), KEY, SECRET) as s:
        yield s


def settings(standin) -> AlpacaSettings:
    return AlpacaSettings(key_id=KEY, secret_key=SECRET, trading_url=standin.url,
                          stream_url=standin.stream_url)  # fmt: skip


@pytest.fixture
def alpaca(standin):
    with AlpacaExecution(INSTRUMENTS, COSTS, settings(standin)) as adapter:
        assert adapter.wait_connected(10)
        wait_for(lambda: standin.market._update_listeners)
        yield adapter


def order(cid: str, symbol: str = "AAA", qty: float = 100.0, **kw) -> Order:
    return Order(cid, cid.split("-")[0], symbol, kw.pop("side", Side.BUY), qty, **kw)


def bar(standin, alpaca):
    """The market's next bar, once every trade update it caused reached the adapter."""
    standin.market.advance()
    wait_for(lambda: alpaca.received == standin.market.updates_sent)
    return standin.market.cross_section(standin.market.step)


def shape(events: list[ev.Event]) -> list[tuple]:
    """What must agree between venues: the fill's id and reference price are the venue's."""
    out = []
    for e in events:
        if e.type == ev.ORDER_FILLED:
            f = e.fill
            out.append((e.type, f.client_id, f.quantity, round(f.price, 9), round(f.fee, 9), f.ts))
        else:
            out.append((e.type, e.client_id))
    return out


PLAN = {
    0: [order("a-1-AAA"), order("a-2-CCC", "CCC", 120.0),
        order("a-3-BBB", "BBB", 10.0, type=OrderType.LIMIT, limit_price=1.0, tif=TimeInForce.DAY)],
    2: [order("a-4-AAA", side=Side.SELL, qty=40.0),
        order("a-5-BBB", "BBB", 30.0, type=OrderType.LIMIT, limit_price=1e6)],
}  # fmt: skip


def test_fills_equal_the_simulators_on_the_same_bars(standin, alpaca):
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, SYMBOLS)
    got, want = [], []
    for k in range(6):
        cross = bar(standin, alpaca)
        got += alpaca.on_bar(cross)
        want += simulator.on_bar(cross)
        simulator.observe(cross)
        got += alpaca.submit(PLAN.get(k, []), k)
        want += simulator.submit(PLAN.get(k, []), k)
    assert shape(got) == shape(want)
    kinds = [e.type for e in want]
    assert kinds.count(ev.ORDER_FILLED) >= 6 and ev.ORDER_EXPIRED in kinds  # partials, DAY
    assert [e.key for e in got if e.type != ev.ORDER_FILLED] == [
        e.key for e in want if e.type != ev.ORDER_FILLED
    ]


def test_split_duplicated_and_reordered_updates_are_applied_once(standin, alpaca):
    standin.market.misbehave(split_fills=True, duplicate_updates=True, reorder_updates=True)
    bar(standin, alpaca)
    alpaca.submit([order("a-1-AAA"), order("a-2-BBB", "BBB", 50.0)], 0)
    events = alpaca.on_bar(bar(standin, alpaca))
    fills = [e.fill for e in events if e.type == ev.ORDER_FILLED]
    assert len(fills) == 4 and len({f.fill_id for f in fills}) == 4
    assert alpaca.tracker.duplicates >= 4
    for cid, qty in (("a-1-AAA", 100.0), ("a-2-BBB", 50.0)):
        assert sum(f.quantity for f in fills if f.client_id == cid) == qty
        assert alpaca.tracker.known[cid].status == OrderStatus.FILLED
    assert alpaca.on_bar(bar(standin, alpaca)) == []


def test_rejects_and_cancels(standin, alpaca):
    standin.market.misbehave(reject_symbols=["BBB"])
    bar(standin, alpaca)
    resting = order("a-1-AAA", type=OrderType.LIMIT, limit_price=1.0)
    [rejected, accepted] = alpaca.submit([order("a-2-BBB", "BBB"), resting], 0)
    assert rejected.type == ev.ORDER_REJECTED and "not tradable" in rejected.reason
    assert accepted.type == ev.ORDER_ACCEPTED
    confirmed = alpaca.cancel("a-1-AAA", "changed my mind", "operator")
    assert (confirmed.type, confirmed.reason, confirmed.actor) == (
        ev.ORDER_CANCELLED, "changed my mind", "operator")  # fmt: skip
    assert alpaca.cancel("a-1-AAA", "again") is None
    assert alpaca.cancel("never-sent", "x") is None
    assert alpaca.on_bar(bar(standin, alpaca)) == []  # the stream's "canceled": a duplicate


def test_a_dropped_stream_loses_no_fill(standin, alpaca, caplog):
    caplog.set_level(logging.DEBUG)
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, SYMBOLS)
    first = bar(standin, alpaca)
    simulator.on_bar(first)
    simulator.observe(first)
    orders = [order("a-1-AAA"), order("a-2-CCC", "CCC", 120.0)]
    alpaca.submit(orders, 0)
    simulator.submit(orders, 0)
    standin.market.drop_streams()
    wait_for(lambda: not standin.market._update_listeners)
    second = standin.market.cross_section(1)
    standin.market.advance()  # fills while the client is away: their updates are lost
    want = simulator.on_bar(second)
    wait_for(lambda: alpaca.connects == 2)
    got = alpaca.on_bar(second)
    assert shape(got) == shape(want)
    assert all(e.fill.fill_id.startswith(f"{e.fill.client_id}:sync:") for e in got)
    wait_for(lambda: standin.market._update_listeners)
    third = bar(standin, alpaca)
    simulator.observe(second)
    assert shape(alpaca.on_bar(third)) == shape(simulator.on_bar(third))  # CCC's next 50
    assert (
        "open orders read back" in caplog.text and SECRET not in caplog.text
    )  # keys are never logged


def test_a_restart_sends_nothing_twice(standin, alpaca):
    bar(standin, alpaca)
    sent = [order("a-1-AAA"), order("a-2-BBB", "BBB", type=OrderType.LIMIT, limit_price=1.0)]
    alpaca.submit(sent, 0)
    alpaca.close()  # the engine dies; the broker goes on
    standin.market.advance()
    arrived = dict(standin.market.desk.arrived)
    # the journal: a-1 accepted, a-2 submitted (its answer was lost), a-3 never reached the broker
    journal = [sent[0].moved_to(OrderStatus.SUBMITTED).moved_to(OrderStatus.ACCEPTED),
               sent[1].moved_to(OrderStatus.SUBMITTED),
               order("a-3-CCC", "CCC", 10.0).moved_to(OrderStatus.SUBMITTED)]  # fmt: skip
    with AlpacaExecution(INSTRUMENTS, COSTS, settings(standin)) as again:
        events = again.restore(journal, {o.client_id: 0 for o in journal})
    assert [(e.type, e.client_id) for e in events if e.type != ev.ORDER_FILLED] == [
        (ev.ORDER_ACCEPTED, "a-2-BBB"), (ev.ORDER_ACCEPTED, "a-3-CCC")]  # fmt: skip
    [fill] = [e.fill for e in events if e.type == ev.ORDER_FILLED]
    assert (fill.client_id, fill.quantity) == ("a-1-AAA", 100.0)
    desk = standin.market.desk
    assert {c: desk.arrived[c] for c in arrived} == arrived  # nothing sent twice
    assert sorted(desk.arrived) == ["a-1-AAA", "a-2-BBB", "a-3-CCC"]


def test_rate_limits_wait_for_retry_after(standin, alpaca):
    bar(standin, alpaca)
    standin.market.misbehave(rate_limited=2, retry_after=1)
    [accepted] = alpaca.submit([order("a-1-AAA")], 0)
    assert accepted.type == ev.ORDER_ACCEPTED
    assert standin.market.desk.bad.rate_limited == 0
    alpaca.attempts = 1
    standin.market.misbehave(rate_limited=1)
    with pytest.raises(Exception, match="rate limit"):
        alpaca.broker_state()


def test_broker_state_and_unknown_orders(standin, alpaca):
    bar(standin, alpaca)
    alpaca.submit(
        [order("a-1-AAA"), order("a-2-BBB", "BBB", type=OrderType.LIMIT, limit_price=1.0)], 0
    )
    standin.market.desk.inject_position("CCC", 7.0, 12.5)
    standin.market.trade(lambda d, step, now: d.submit(
        {"symbol": "AAA", "qty": "1", "side": "buy", "type": "market", "client_order_id": "other"},
        step, now))  # fmt: skip
    events = alpaca.on_bar(bar(standin, alpaca))
    assert [e.kind for e in events if e.type == ev.RISK_ALERT] == ["unknown_order"] * 2
    state = alpaca.broker_state()
    fill = next(e.fill for e in events if e.type == ev.ORDER_FILLED)
    assert state.positions["CCC"] == (7.0, 12.5)
    assert state.positions["AAA"][0] == 101.0
    assert state.open_orders == {"a-2-BBB": ("BBB", "buy", 100.0, 0.0, "limit", 1.0, None)}
    assert state.cash < 100_000 - 100 * fill.price


def test_a_fill_on_its_way_is_read_back_before_it_counts_as_a_difference(standin, alpaca):
    """The broker filled an order whose update the book has not taken yet (the engine asks
    between bars): one comparison would halt on it; the reconciler reads the open orders
    back and compares again."""
    bar(standin, alpaca)
    sent = order("a-1-AAA")
    spec = ev.AccountSpec("a", 100_000.0, {}, False)
    submitted = ev.OrderSubmitted(sent, 0, None, key="submitted:a-1-AAA")
    book = Book().apply_all([ev.RunStarted({}, (spec,), key=ev.RUN_STARTED), submitted])
    book.apply_all(alpaca.submit([sent], 0))
    reconciler = Reconciler(alpaca.broker_state, "halt", 15.0)
    book.apply_all(reconciler.check(book))  # the cash baseline
    bar(standin, alpaca)  # the fill, waiting in the adapter

    def settle() -> None:
        book.apply_all(alpaca.take_updates(read_back=True))

    once = Reconciler(alpaca.broker_state, "halt", 15.0, attempts=1)
    [alone, *halts] = once.check(book, "periodic", settle)
    assert sorted(d["kind"] for d in alone.differences) == ["cash", "order_missing", "position"]
    assert [h.type for h in halts] == [ev.RISK_STATE_CHANGED]
    [settled] = reconciler.check(book, "periodic", settle)
    assert settled.matched, settled.differences
    assert not book.open and book.accounts["a"].positions["AAA"].quantity == 100.0


def test_keys_are_required():
    with pytest.raises(AlpacaError, match="QTIS_ALPACA_KEY_ID"):
        AlpacaExecution(INSTRUMENTS, COSTS, AlpacaSettings(key_id=None, secret_key=None))


def test_it_has_the_execution_interface(standin):
    adapter = AlpacaExecution(INSTRUMENTS, COSTS, settings(standin))
    assert isinstance(adapter, Execution)
    for name in ("submit", "cancel", "on_bar", "restore", "observe", "journaled"):
        expected = list(inspect.signature(getattr(Execution, name)).parameters)
        assert list(inspect.signature(getattr(AlpacaExecution, name)).parameters) == expected


@pytest.mark.parametrize(
    "kind",
    [
        {"type": OrderType.LIMIT, "limit_price": 49.0},
        {"type": OrderType.STOP, "stop_price": 49.0, "side": Side.SELL},
        {"type": OrderType.STOP_LIMIT, "stop_price": 49.0, "limit_price": 48.0, "side": Side.SELL},
        {"tif": TimeInForce.IOC, "symbol": "CCC", "qty": 120.0},
        {"tif": TimeInForce.FOK, "symbol": "CCC", "qty": 120.0},
        {"type": OrderType.LIMIT, "limit_price": 1.0, "tif": TimeInForce.DAY},
    ],
)
def test_every_kind_of_order_ends_as_the_simulators(standin, alpaca, kind):
    """Alpaca sends no update when a stop triggers: the simulator's ``order_triggered`` is
    the one event the adapter does not produce."""
    kind = dict(kind)
    mine = order(
        "a-1-" + kind.get("symbol", "AAA"),
        kind.pop("symbol", "AAA"),
        kind.pop("qty", 100.0),
        **kind,
    )
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, SYMBOLS)
    got, want = [], []
    for k in range(5):
        cross = bar(standin, alpaca)
        got += alpaca.on_bar(cross)
        want += simulator.on_bar(cross)
        simulator.observe(cross)
        if k == 0:
            got += alpaca.submit([mine], k)
            want += simulator.submit([mine], k)
    assert shape(got) == shape([e for e in want if e.type != ev.ORDER_TRIGGERED])
    assert len(want) >= 2  # accepted, and the order did something


def test_a_resubmitted_order_is_read_back_not_sent_again(standin, alpaca):
    """A submit whose id the broker has (sent before a crash) answers with the order's state:
    only accepts and rejects come back from ``submit`` (the engine stamps their latency), its
    fill comes with the next bar."""
    bar(standin, alpaca)
    alpaca.submit([order("a-1-AAA")], 0)
    bar(standin, alpaca)
    arrived = dict(standin.market.desk.arrived)
    with AlpacaExecution(INSTRUMENTS, COSTS, settings(standin)) as again:
        answers = again.submit([order("a-1-AAA")], 1)
        assert [(e.type, e.client_id) for e in answers] == [(ev.ORDER_ACCEPTED, "a-1-AAA")]
        [filled] = again.on_bar(standin.market.cross_section(1))
    assert (filled.type, filled.fill.quantity) == (ev.ORDER_FILLED, 100.0)
    assert standin.market.desk.arrived == arrived


def test_an_end_that_overtakes_its_fill_waits_for_it(standin, alpaca):
    standin.market.misbehave(reorder_updates=True)  # an IOC's "canceled" before its fill
    bar(standin, alpaca)
    alpaca.submit([order("a-1-CCC", "CCC", 120.0, tif=TimeInForce.IOC)], 0)
    events = alpaca.on_bar(bar(standin, alpaca))
    assert [(e.type, getattr(e, "fill", None) and e.fill.quantity) for e in events] == [
        (ev.ORDER_FILLED, 50.0), (ev.ORDER_CANCELLED, None)]  # fmt: skip
    final = alpaca.tracker.known["a-1-CCC"]
    assert (final.status, final.filled) == (OrderStatus.CANCELLED, 50.0)


def test_an_unreachable_broker_is_retried_then_named():
    url = f"http://127.0.0.1:{free_port()}"
    where = AlpacaSettings(key_id=KEY, secret_key=SECRET, trading_url=url)
    adapter = AlpacaExecution(INSTRUMENTS, COSTS, where, attempts=2, max_wait=0.1)
    with pytest.raises(AlpacaError, match=f"cannot reach Alpaca at {url}"):
        adapter.broker_state()


def test_concurrent_submission_keeps_each_symbols_order(standin):
    """Symbols POSTed at once: the same fills as the simulator's, in another order across
    symbols only (one symbol's orders still reach the broker in order)."""
    plan = {0: PLAN[0] + [order("a-6-AAA", qty=30.0), order("a-7-CCC", "CCC", 10.0)], 2: PLAN[2]}
    with AlpacaExecution(INSTRUMENTS, COSTS, settings(standin), concurrency=4) as alpaca:
        assert alpaca.wait_connected(10)
        wait_for(lambda: standin.market._update_listeners)
        simulator = SimulatedBroker(COSTS, INSTRUMENTS, SYMBOLS)
        got, want = [], []
        for k in range(6):
            cross = bar(standin, alpaca)
            got += alpaca.on_bar(cross)
            want += simulator.on_bar(cross)
            simulator.observe(cross)
            answers = alpaca.submit(plan.get(k, []), k)
            assert [e.client_id for e in answers] == [o.client_id for o in plan.get(k, [])]
            got += answers
            want += simulator.submit(plan.get(k, []), k)
    assert sorted(shape(got), key=str) == sorted(shape(want), key=str)
    for symbol in SYMBOLS:
        mine = [cid for cid in standin.market.desk.arrived if cid.endswith(symbol)]
        assert mine == [o.client_id for k in sorted(plan) for o in plan[k] if o.symbol == symbol]
