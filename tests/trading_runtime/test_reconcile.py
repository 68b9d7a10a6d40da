"""Reconciliation with the broker: positions (in total per symbol over the sub-accounts that
trade at the broker), cash (its change since the first reconciliation) and open orders (ours
by their client ids, or someone else's) compared with the book; the ``adopt`` policy corrects
the book until it equals the broker, ``halt`` stops trading; the journal rebuilds the same
book; a ``Reconciler`` decides when; a difference reaches the operator's alert sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.alerts import AlertSink
from monitoring.runtime_alerts import RuntimeAlerts
from monitoring.settings import AlertSettings
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState, rebuild
from trading_runtime.broker import CrossSection
from trading_runtime.domain import Fill, Order, OrderStatus, OrderType, Side
from trading_runtime.instruments import Instrument
from trading_runtime.journal import Journal
from trading_runtime.reconcile import BrokerState, Reconciler, reconcile
from trading_runtime.routing import EngineHooks
from trading_runtime.settings import LiveSettings
from trading_runtime.sizing import StopPolicy, holdings
from trading_runtime.stops import Stops

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
STAMP = "20261204T000000"


def started(*accounts: tuple[str, float, bool]) -> ev.RunStarted:
    specs = tuple(ev.AccountSpec(name, capital, {}, shadow) for name, capital, shadow in accounts)
    return ev.RunStarted({}, specs, key=ev.RUN_STARTED)


def traded(account: str, symbol: str, quantity: float, price: float, side=Side.BUY, n=0):
    """The events of one order filled in full at ``price`` (no fee)."""
    cid = f"{account}-2026120{n + 1}T000000-{symbol}"
    order = Order(cid, account, symbol, side, quantity)
    fill = Fill(f"{cid}:0", cid, account, symbol, side, quantity, price, 0.0, T0, price)
    return [
        ev.OrderSubmitted(order, 0, price, key=f"submitted:{cid}"),
        ev.OrderAccepted(cid, key=f"accepted:{cid}"),
        ev.OrderFilled(fill, key=f"fill:{fill.fill_id}"),
    ]


def working(account: str, symbol: str, quantity: float, side=Side.BUY) -> list[ev.Event]:
    cid = f"{account}-{STAMP}-{symbol}"
    order = Order(cid, account, symbol, side, quantity)
    return [ev.OrderSubmitted(order, 0, 10.0, key=f"submitted:{cid}"),
            ev.OrderAccepted(cid, key=f"accepted:{cid}")]  # fmt: skip


def a_book() -> Book:
    """main holds 100 AAPL, alt 50 MSFT and works a buy of 10 IBM; the shadow holds 7 AAPL."""
    events = [
        started(("main", 100_000.0, False), ("alt", 50_000.0, False), ("ghost", 10_000.0, True)),
        *traded("main", "AAPL", 100, 150.0),
        *traded("alt", "MSFT", 50, 300.0),
        *traded("ghost", "AAPL", 7, 150.0),
        *working("alt", "IBM", 10),
    ]
    return Book().apply_all(events)


def the_broker(book: Book, cash: float = 1_234_567.0, **changes) -> BrokerState:
    """The broker as the book sees it (without the shadow account), with ``changes``."""
    positions: dict[str, tuple[float, float]] = {}
    for account in book.accounts.values():
        if account.shadow:
            continue
        for symbol, p in account.positions.items():
            if p.quantity:
                held = positions.get(symbol, (0.0, p.avg_price))[0]
                positions[symbol] = (held + p.quantity, p.avg_price)
    orders = {
        o.client_id: (o.symbol, o.side.value, o.quantity, o.filled)
        for o in book.open.values()
        if not book.accounts[o.account].shadow
    }
    values = {"positions": positions, "cash": cash, "open_orders": orders, "as_of": T0}
    return BrokerState(**(values | changes))


def applied(book: Book, events: list[ev.Event]) -> Book:
    return book.apply_all(events)


def kinds(event: ev.Reconciled) -> list[str]:
    return sorted(d["kind"] for d in event.differences)


def test_a_book_that_agrees_journals_one_matched_reconciliation():
    book = a_book()
    events = reconcile(book, the_broker(book), "start", "halt")
    assert len(events) == 1 and isinstance(events[0], ev.Reconciled)
    done = events[0]
    assert done.matched and done.differences == () and done.action == "none"
    assert done.trigger == "start"
    assert done.broker["baseline"]["broker_cash"] == 1_234_567.0
    assert done.broker["baseline"]["book_cash"] == pytest.approx(100_000 - 15_000 + 50_000 - 15_000)


def test_a_position_the_book_does_not_know_is_adopted_into_the_first_account():
    book = a_book()
    broker = the_broker(book)
    state = the_broker(book, positions={**broker.positions, "TSLA": (20.0, 400.0)})
    events = reconcile(book, state, "start", "adopt")
    first, *corrections = events
    assert not first.matched and first.action == "adopted"
    assert first.differences == (
        {"kind": "position", "symbol": "TSLA", "book": 0.0, "broker": 20.0, "account": "main"},
    )
    assert corrections == [
        ev.BookCorrected("main", "TSLA", 0.0, 20.0, 400.0, 0.0, "reconciliation (start)")
    ]
    applied(book, events)
    assert book.accounts["main"].positions["TSLA"].quantity == 20
    assert book.accounts["main"].positions["TSLA"].avg_price == 400
    again = reconcile(book, state, "periodic", "adopt")
    assert [e.matched for e in again] == [True]


def test_an_adopted_position_outside_the_universe_is_held_not_traded():
    """The broker holds TSLA, which the run does not trade: after adopting it the engine's
    holdings and protective stops go on over the run's own symbols."""
    book = a_book()
    state = the_broker(book)
    applied(book, reconcile(book, the_broker(book, positions={**state.positions,
                                                              "TSLA": (20.0, 400.0)}),
                            "start", "adopt"))  # fmt: skip
    index = {"AAPL": 0, "MSFT": 1, "IBM": 2}
    held, _ = holdings(book, book.accounts["main"], index)
    assert held.tolist() == [100.0, 0.0, 0.0]
    sent: list[Order] = []
    hooks = EngineHooks({s: Instrument(s) for s in index}, index, lambda e: None,
                        lambda b, order, price: sent.append(order), lambda c, r: None)  # fmt: skip
    prices = np.array([150.0, 300.0, 20.0])
    bar = CrossSection(1, T0, prices, prices, prices, prices, np.ones(3))
    Stops(hooks).manage(book, StopPolicy(fixed_atr=2.0), book.accounts["main"], bar, np.ones(3))
    assert [o.symbol for o in sent] == ["AAPL"]


def test_positions_are_compared_in_total_and_corrected_where_the_symbol_is_held():
    """main and alt both hold AAPL: 150 at the broker is 100 + 50; 140 takes 10 from main
    (the first sub-account holding it); the shadow's 7 AAPL never count."""
    book = Book().apply_all([
        started(("main", 100_000.0, False), ("alt", 50_000.0, False), ("ghost", 9_000.0, True)),
        *traded("main", "AAPL", 100, 150.0), *traded("alt", "AAPL", 50, 150.0, n=1),
        *traded("ghost", "AAPL", 7, 150.0, n=2),
    ])  # fmt: skip
    assert reconcile(book, the_broker(book), "start", "adopt")[0].matched
    events = reconcile(book, the_broker(book, positions={"AAPL": (140.0, 150.0)}), "start", "adopt")
    assert events[1:] == [
        ev.BookCorrected("main", "AAPL", 100.0, 90.0, 150.0, 0.0, "reconciliation (start)")
    ]


def test_cash_is_compared_by_its_change_since_the_first_reconciliation():
    book = a_book()
    applied(book, reconcile(book, the_broker(book, cash=5_000.0), "start", "adopt"))
    assert reconcile(book, the_broker(book, cash=5_000.0), "periodic", "adopt")[0].matched
    events = reconcile(book, the_broker(book, cash=4_000.0), "periodic", "adopt")
    assert events[0].differences == (
        {"kind": "cash", "book_change": 0.0, "broker_change": -1000.0, "difference": -1000.0,
         "account": "main"},
    )  # fmt: skip
    assert events[1:] == [
        ev.BookCorrected("main", None, 0.0, 0.0, None, -1000.0, "reconciliation (periodic)")
    ]
    applied(book, events)
    assert book.accounts["main"].cash == pytest.approx(100_000 - 15_000 - 1000)
    assert reconcile(book, the_broker(book, cash=4_000.0), "periodic", "adopt")[0].matched


def test_orders_the_journal_lacks_are_told_apart_by_client_id():
    """An order of ours the journal does not have (sent just before a crash) is adopted as
    open under either policy; one QTIS did not send is reported, never adopted; an open order
    the broker does not have is closed by the adopt policy."""
    book = a_book()
    ours, theirs, gone = f"main-{STAMP}-GOOG", "web-7f3a9c", f"alt-{STAMP}-IBM"
    orders = {ours: ("GOOG", "buy", 5.0, 2.0), theirs: ("AAPL", "sell", 1.0, 0.0)}
    events = reconcile(book, the_broker(book, open_orders=orders), "reconnect", "adopt")
    assert kinds(events[0]) == ["order_foreign", "order_missing", "order_unjournaled"]
    assert {d["client_id"]: d.get("account") for d in events[0].differences} == {
        ours: "main",
        theirs: None,
        gone: "alt",
    }
    applied(book, events)
    adopted = book.orders[ours]
    assert (adopted.account, adopted.symbol, adopted.side, adopted.quantity) == (
        "main",
        "GOOG",
        Side.BUY,
        5.0,
    )
    assert adopted.status == OrderStatus.ACCEPTED and adopted.filled == 2.0
    assert ours in book.open and theirs not in book.orders
    assert book.orders[gone].status == OrderStatus.CANCELLED and gone not in book.open
    # the other two now agree; the order QTIS did not send stays a difference
    again = reconcile(book, the_broker(book, open_orders=orders), "periodic", "adopt")
    assert kinds(again[0]) == ["order_foreign"]


def test_an_order_the_book_closed_but_the_broker_has_open_is_reported_not_reopened():
    book = a_book()
    filled = "main-20261201T000000-AAPL"  # filled in the book (a_book)
    state = the_broker(book, open_orders={filled: ("AAPL", "buy", 100.0, 60.0)})
    events = reconcile(book, state, "reconnect", "adopt")
    mismatch, missing = sorted(events[0].differences, key=lambda d: d["kind"])
    assert missing["client_id"] == f"alt-{STAMP}-IBM"  # the book's open order, not at the broker
    assert mismatch["kind"] == "order_mismatch" and mismatch["book"]["status"] == "filled"
    assert mismatch["broker"]["filled"] == 60.0
    applied(book, events)
    assert book.orders[filled].status == OrderStatus.FILLED  # a closed order stays closed


def test_a_stop_and_a_slice_of_ours_are_recognised_with_their_kind():
    book = a_book()
    orders = {
        f"main-{STAMP}-AAPL-stop": ("AAPL", "sell", 100.0, 0.0, "stop", None, 135.0),
        f"alt-{STAMP}-MSFT-2": ("MSFT", "buy", 5.0, 0.0),
        f"alt-{STAMP}-IBM": ("IBM", "buy", 10.0, 0.0),
        f"main-{STAMP}-MSFT": ("AAPL", "buy", 1.0, 0.0),  # our scheme, another symbol: not ours
    }
    applied(book, reconcile(book, the_broker(book, open_orders=orders), "start", "halt"))
    stop = book.orders[f"main-{STAMP}-AAPL-stop"]
    assert (stop.type, stop.stop_price, stop.tag) == (OrderType.STOP, 135.0, "stop")
    child = book.orders[f"alt-{STAMP}-MSFT-2"]
    assert (child.tag, child.parent_id) == ("algo", f"alt-{STAMP}-MSFT")
    assert f"main-{STAMP}-MSFT" not in book.orders


def test_the_halt_policy_halts_every_account_at_the_broker_and_corrects_nothing():
    book = a_book()
    state = the_broker(book, positions={"AAPL": (90.0, 150.0)})
    events = reconcile(book, state, "periodic", "halt")
    assert events[0].action == "halted" and not events[0].matched
    halts = events[1:]
    assert [(e.account, e.state, e.actor) for e in halts] == [
        ("main", "halted", "reconcile"),
        ("alt", "halted", "reconcile"),
    ]
    assert "AAPL" in halts[0].reason and "MSFT" in halts[0].reason
    applied(book, events)
    assert book.accounts["ghost"].state == TradingState.ACTIVE
    assert book.accounts["main"].positions["AAPL"].quantity == 100  # untouched
    assert reconcile(book, state, "periodic", "halt")[1:] == []  # halted already


positions = st.dictionaries(
    st.sampled_from(["AAPL", "MSFT", "IBM", "GOOG", "TSLA"]),
    st.tuples(st.integers(-50, 50).map(float), st.floats(1, 500)),
    max_size=5,
)


# open orders the broker may report: the book's own (alt's IBM buy), ours it lacks, not ours
BROKER_ORDERS = {
    f"alt-{STAMP}-IBM": ("IBM", "buy", 10.0, 0.0),
    f"main-{STAMP}-GOOG": ("GOOG", "buy", 5.0, 1.0),
    f"alt-{STAMP}-MSFT-stop": ("MSFT", "sell", 50.0, 0.0, "stop", None, 280.0),
    "manual-1": ("AAPL", "sell", 3.0, 0.0),
}


@settings(max_examples=60, deadline=None)
@given(
    broker=positions,
    cash=st.floats(-1e6, 1e6),
    start_cash=st.floats(0, 1e6),
    orders=st.sets(st.sampled_from(sorted(BROKER_ORDERS))),
)
def test_after_adopting_the_book_equals_the_broker(broker, cash, start_cash, orders):
    book = a_book()
    applied(book, reconcile(book, the_broker(book, cash=start_cash), "start", "adopt"))
    state = the_broker(
        book,
        cash=cash,
        positions={s: q for s, q in broker.items() if q[0]},
        open_orders={cid: BROKER_ORDERS[cid] for cid in orders},
    )
    applied(book, reconcile(book, state, "periodic", "adopt"))
    again = reconcile(book, state, "periodic", "adopt")[0]
    # what is left is the order QTIS did not send, which no correction can make ours
    assert kinds(again) == (["order_foreign"] if "manual-1" in orders else [])
    assert sorted(o for o in book.open if not book.accounts[book.open[o].account].shadow) == (
        sorted(orders - {"manual-1"})
    )


def test_rebuilding_from_the_journal_gives_the_corrected_book(db_url):
    journal = Journal(db_url, "reconciled")
    try:
        journal.write(book_events())
        book = rebuild(journal)
        orders = {f"main-{STAMP}-GOOG": ("GOOG", "buy", 5.0, 0.0)}
        first = the_broker(book, cash=10_000.0, positions={"AAPL": (80.0, 150.0)},
                           open_orders=orders)  # fmt: skip
        events = reconcile(book, first, "start", "adopt")
        applied(book, events)
        journal.write(events)
        events = reconcile(book, the_broker(book, cash=9_000.0), "periodic", "adopt")
        assert kinds(events[0]) == ["cash"]
        applied(book, events)
        journal.write(events)
        journal.write([], book.to_state())  # the snapshot keeps the cash baseline too
        assert rebuild(journal, from_snapshot=False).to_state() == book.to_state()
        rebuilt = rebuild(journal)
        assert rebuilt.to_state() == book.to_state()
        assert reconcile(rebuilt, the_broker(book, cash=9_000.0), "periodic", "halt")[0].matched
    finally:
        journal.close()


def book_events() -> list[ev.Event]:
    return [
        started(("main", 100_000.0, False), ("alt", 50_000.0, False), ("ghost", 10_000.0, True)),
        *traded("main", "AAPL", 100, 150.0),
        *traded("alt", "MSFT", 50, 300.0),
        *working("alt", "IBM", 10),
    ]


class Broker:
    """The broker's answer, counting how often it was asked."""

    def __init__(self, state: BrokerState) -> None:
        self.state, self.asked = state, 0

    def __call__(self) -> BrokerState:
        self.asked += 1
        return self.state


def test_the_reconciler_runs_at_start_after_a_reconnect_and_every_n_minutes():
    book = a_book()
    broker = Broker(the_broker(book))
    now = [0.0]
    settings = LiveSettings(reconcile_minutes=15, reconcile_policy="adopt")
    reconciler = Reconciler.from_settings(broker, settings, clock=lambda: now[0])
    triggers = []
    for t, reconnect in ((0, False), (60, False), (120, True), (180, False), (120 + 899, False),
                         (120 + 900, False), (120 + 901, False)):  # fmt: skip
        now[0] = float(t)
        if reconnect:
            reconciler.reconnected()
        events = reconciler.check(book)
        triggers.append(events[0].trigger if events else None)
    assert triggers == ["start", None, "reconnect", None, None, "periodic", None]
    assert broker.asked == 3


def test_a_difference_counts_only_once_it_outlasts_the_settling():
    """Between comparisons the engine settles (reads the broker's news into the book); a
    difference that goes away is not journaled, one that stays is, after every attempt."""
    book = a_book()
    cid = f"alt-{STAMP}-IBM"  # the working IBM order, filled at the broker
    fill = Fill(f"{cid}:0", cid, "alt", "IBM", Side.BUY, 10, 20.0, 0.0, T0, 20.0)
    late = ev.OrderFilled(fill, key=f"fill:{fill.fill_id}")
    broker = Broker(the_broker(a_book().apply_all([late])))
    settled = []

    def settle() -> None:
        settled.append(late)
        book.apply(late)

    reconciler = Reconciler(broker, "halt", 15.0, attempts=3)
    [done] = reconciler.check(book, settle=settle)
    assert done.matched and len(settled) == 1 and broker.asked == 2
    stuck = Broker(the_broker(book, positions={"AAPL": (90.0, 150.0)}))
    calls = []
    events = Reconciler(stuck, "halt", 15.0, attempts=3).check(book, settle=lambda: calls.append(1))
    assert not events[0].matched and len(calls) == 2 and stuck.asked == 3
    assert ev.RISK_STATE_CHANGED in {e.type for e in events}


def test_a_difference_reaches_the_operator_once_and_a_match_never(tmp_path):
    log = tmp_path / "alerts.jsonl"
    alerts = RuntimeAlerts("live", AlertSink(AlertSettings(log_file=log), tmp_path))
    book = a_book()
    alerts.observe(reconcile(book, the_broker(book), "start", "halt")[0], book)
    state = the_broker(book, positions={"AAPL": (90.0, 150.0)})
    for _ in range(2):
        alerts.observe(reconcile(book, state, "periodic", "halt")[0], book)
    alerts.close()
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [a["severity"] for a in sent] == ["critical"]
    assert sent[0]["key"].startswith("live:reconciled:halted:")
    assert "AAPL" in sent[0]["message"] and "MSFT" in sent[0]["message"]


def test_five_hundred_positions_reconcile_without_touching_the_database():
    """The bench times it; here only that it is whole: every position compared once."""
    symbols = [f"S{i:03d}" for i in range(500)]
    events = [started(("main", 1e9, False))]
    for i, s in enumerate(symbols):
        events += traded("main", s, 10 + i, 20.0, n=i % 9)
    book = Book().apply_all(events)
    state = the_broker(book)
    moved = {**state.positions, "S007": (1.0, 20.0)}
    out = reconcile(book, the_broker(book, positions=moved), "start", "adopt")
    assert [d["symbol"] for d in out[0].differences] == ["S007"]
    assert out[0].broker["positions"] == 500
