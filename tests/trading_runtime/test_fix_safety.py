"""FIX that loses nothing: what a crash, a careless venue or a hostile one does to the gateway.
A fill received but not yet journaled when the process dies comes again after the restart;
fills are keyed on their ExecID; reports the engine's book cannot apply become journaled
alerts; no byte sequence kills the reader; resend ranges are clamped and a lower
SequenceReset refused; one process per session, its files under QTIS_HOME; open orders are
reconciled by OrderStatusRequest when a stream resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from core.errors import QtisError
from tests.support.hostile import ALERTS, EXTRAS, hostile_round
from tests.support.venue import ACTIONS, DAY0, ScriptedVenue, bar, latin1, logged_on
from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.domain import Order, OrderStatus, Side
from trading_runtime.fix.gateway import FixGateway
from trading_runtime.fix.messages import ExecType
from trading_runtime.fix.store import FileStore
from trading_runtime.fix.venue import FixVenue
from trading_runtime.instruments import Instrument
from trading_runtime.journal import Journal
from trading_runtime.runs import StreamBusy, run
from trading_runtime.settings import CostModel, FixSettings

INSTRUMENTS = {"X": Instrument("X")}
COSTS = CostModel(participation=0.1, latency_bars=0)


@pytest.fixture
def settings(tmp_path) -> FixSettings:
    return FixSettings(store_dir=tmp_path / "fix", answer_timeout=2.0, connect_timeout=1.0)


@pytest.fixture
def errors():
    """Exceptions that ended a thread (the reader's included): there must be none."""
    seen: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: seen.append(f"{args.thread.name}: {args.exc_value!r}")
    yield seen
    threading.excepthook = previous


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    assert [t.name for t in threading.enumerate() if t.name.startswith("fix")] == []


def order(cid: str = "o1", qty: float = 100.0) -> Order:
    return Order(cid, "acct", "X", Side.BUY, qty, created=DAY0)


def book_of(*orders: Order) -> Book:
    """The engine's book with ``orders`` journaled as submitted."""
    book = Book().apply_all([ev.RunStarted({}, (ev.AccountSpec("acct", 1e6, {}),))])
    for o in orders:
        book.apply(ev.OrderSubmitted(o, 0, 10.0, key=f"submitted:{o.client_id}"))
    return book


def crash(gateway: FixGateway) -> None:
    """The process dies: no Logout, nothing more journaled, its files left as they are."""
    gateway.session.drop()
    gateway.session.store.close()


def fills(events) -> list[tuple[str, float]]:
    return [(e.fill.fill_id, e.fill.quantity) for e in events if e.type == ev.ORDER_FILLED]


# --- a crash between receiving a fill and journaling it ---------------------------------------


def test_a_fill_received_but_not_journaled_before_a_crash_comes_again_after_the_restart(
    settings,
):
    with FixVenue(COSTS, INSTRUMENTS, ["X"], settings) as venue:
        at = settings.model_copy(update={"port": venue.port})
        first = FixGateway(INSTRUMENTS, at)
        assert [e.type for e in first.submit([order()], 0)] == [ev.ORDER_ACCEPTED]
        venue.on_bar(bar(1, 10, 10, 10, 10))
        assert len(fills(first.on_bar(bar(1, 10, 10, 10, 10)))) == 1  # handed to the engine...
        crash(first)  # ...which died before its journal write: the journal has the order only

        second = FixGateway(INSTRUMENTS, at)
        book = book_of(order())
        events = second.restore(list(book.open.values()), book.submitted_step)
        events += second.on_bar(bar(2, 10, 10, 10, 10))
        second.close()
    assert [e.type for e in events] == [ev.ORDER_ACCEPTED, ev.ORDER_FILLED]
    assert venue.broker.duplicates == 0  # the venue knew the order: it was not sent again
    book.apply_all(events)
    assert book.accounts["acct"].positions["X"].quantity == 100


def test_what_was_journaled_before_a_crash_is_not_received_twice(settings):
    with FixVenue(COSTS, INSTRUMENTS, ["X"], settings) as venue:
        at = settings.model_copy(update={"port": venue.port})
        first = FixGateway(INSTRUMENTS, at)
        book = book_of(order())
        book.apply_all(first.submit([order()], 0))
        venue.on_bar(bar(1, 10, 10, 10, 10))
        book.apply_all(first.on_bar(bar(1, 10, 10, 10, 10)))
        first.journaled()  # the engine's write committed
        crash(first)
        second = FixGateway(INSTRUMENTS, at)
        again = second.restore(list(book.open.values()), book.submitted_step)
        again += second.on_bar(bar(2, 10, 10, 10, 10))
        second.close()
    assert again == []
    assert book.orders["o1"].status == OrderStatus.FILLED


# --- fills keyed on ExecID --------------------------------------------------------------------


def test_two_partial_fills_in_the_same_second_are_two_fills_in_the_journal(settings, db_url):
    with ScriptedVenue(settings, settings.store_dir / "venue") as venue:
        gateway = FixGateway(INSTRUMENTS, settings.model_copy(update={"port": venue.port}))
        events = gateway.submit([order()], 0)
        venue.report("o1", ExecType.TRADE, qty=30, exec_id="T-1", when=DAY0)
        venue.report("o1", ExecType.TRADE, qty=20, exec_id="T-2", when=DAY0)
        events += gateway.on_bar(bar(1, 10, 10, 10, 10))
        gateway.close()
    journal = Journal(db_url, "same-second")
    try:
        journal.write(events)
        kept = [e.fill.quantity for e in journal.read(types=[ev.ORDER_FILLED])]
    finally:
        journal.close()
    assert kept == [30, 20]


# --- reports the engine's book could not apply ------------------------------------------------


def test_reports_for_an_unknown_order_or_without_account_are_journaled_alerts(settings, errors):
    with ScriptedVenue(settings, settings.store_dir / "venue") as venue:
        gateway = FixGateway(INSTRUMENTS, settings.model_copy(update={"port": venue.port}))
        book = book_of(order())
        book.apply_all(gateway.submit([order()], 0))
        venue.report("ghost", ExecType.TRADE, qty=10, exec_id="G-1")
        venue.report("o1", ExecType.TRADE, qty=40, exec_id="T-1", drop=[1])  # no Account (1)
        events = gateway.on_bar(bar(1, 10, 10, 10, 10))
        gateway.close()
    book.apply_all(events)  # the engine applies every event it gets: no KeyError stops it
    alerts = [e for e in events if e.type == ev.RISK_ALERT]
    assert [a.kind for a in alerts] == ["unknown_order", "missing_account"]
    assert "ghost" in alerts[0].message and "Account (1)" in alerts[1].message
    assert fills(events) == [("o1:T-1", 40)]  # the order is ours: its fill counts
    assert book.accounts["acct"].positions["X"].quantity == 40
    assert errors == []


def test_a_latin1_text_does_not_kill_the_reader(settings, errors):
    with ScriptedVenue(settings, settings.store_dir / "venue") as venue:
        venue.answer, venue.reason = ExecType.REJECTED, "LATIN1"
        venue.edit = latin1  # its Text (58) in Latin-1
        gateway = FixGateway(INSTRUMENTS, settings.model_copy(update={"port": venue.port}))
        answers = gateway.submit([order()], 0)
        alive = gateway.session.test("after", 2.0)
        gateway.close()
    assert errors == []
    assert answers == [ev.OrderRejected("o1", "déjà vu", key="rejected:o1")]
    assert alive


# --- reconciling open orders at the restart ---------------------------------------------------


def test_a_restart_sends_again_only_the_orders_the_venue_does_not_know(settings):
    with ScriptedVenue(settings, settings.store_dir / "venue") as venue:
        at = settings.model_copy(update={"port": venue.port})
        venue.answer = None  # the venue says nothing: the order is lost on its way in
        first = FixGateway(INSTRUMENTS, at)
        assert first.submit([order("lost")], 0) == []
        crash(first)
        venue.answer = ExecType.NEW
        second = FixGateway(INSTRUMENTS, at)
        book = book_of(order("lost"))
        events = second.restore(list(book.open.values()), book.submitted_step)
        second.close()
    assert [(e.type, e.client_id) for e in events] == [(ev.ORDER_ACCEPTED, "lost")]
    assert venue.received["lost"] == 2  # asked about, found unknown, sent again


def test_a_status_report_showing_fills_the_journal_lacks_is_an_alert(settings):
    with ScriptedVenue(settings, settings.store_dir / "venue") as venue:
        at = settings.model_copy(update={"port": venue.port})
        first = FixGateway(INSTRUMENTS, at)
        book = book_of(order())
        book.apply_all(first.submit([order()], 0))
        first.journaled()
        venue.report("o1", ExecType.TRADE, qty=40, exec_id="T-1")
        first.on_bar(bar(1, 10, 10, 10, 10))
        first.journaled()  # said to be written, but this journal never got it (a lost backup)
        crash(first)
        second = FixGateway(INSTRUMENTS, at)
        events = second.restore(list(book.open.values()), book.submitted_step)
        second.close()
    [alert] = events
    assert (alert.type, alert.kind, alert.account) == (ev.RISK_ALERT, "fills_missing", "acct")
    assert "o1" in alert.message and "40" in alert.message


# --- the session layer ------------------------------------------------------------------------


def test_a_resend_request_of_a_huge_range_is_clamped_and_answered_at_once(raw_venue):
    client = logged_on(raw_venue)
    client.send(client.message("2", (7, -(10**12)), (16, 0)).encode())
    client.send(client.message("1", (112, "still-there")).encode())
    answers = [client.read() for _ in range(2)]
    client.sock.close()
    gap_fill, heartbeat = answers
    assert (gap_fill.get(35), gap_fill.get(34), gap_fill.get(36)) == (b"4", b"1", b"2")
    assert (heartbeat.get(35), heartbeat.get(112)) == (b"0", b"still-there")


def test_a_sequence_reset_to_a_lower_number_is_rejected(raw_venue):
    client = logged_on(raw_venue)
    for _ in range(3):
        client.send(client.message("0").encode())
    client.send(client.message("4", (36, 2)).encode())  # seq 5: reset, down to 2
    reject = client.read()
    client.sock.close()
    assert (reject.get(35), reject.get(45), reject.get(371), reject.get(373)) == (
        b"3", b"5", b"36", b"5",
    )  # fmt: skip
    assert b"cannot lower" in reject.get(58)
    assert raw_venue.sessions["RAW"].store.next_target == 5


# --- one process per session, its files under QTIS_HOME ---------------------------------------


def test_a_session_in_use_by_another_process_is_refused_naming_it(tmp_path):
    where = tmp_path / "QTIS-VENUE"
    code = (
        "import sys, pathlib; from trading_runtime.fix.store import FileStore;"
        " store = FileStore(pathlib.Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", code, str(where)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env)  # fmt: skip
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(QtisError, match=rf"in use by process {holder.pid}\b"):
            FileStore(where)
    finally:
        holder.stdin.close()
        holder.wait(30)
    FileStore(where).close()  # free again once that process is gone


def test_the_session_files_live_under_qtis_home(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / "home"))
    gateway = FixGateway(INSTRUMENTS, FixSettings())
    gateway.close()
    assert (tmp_path / "home" / "fix" / "QTIS-VENUE" / "seqnums.json").parent.is_dir()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_the_stream_lock_is_taken_before_the_logon(hand_market, settings):
    url = hand_market([("2024-01-02", 10, 10, 10, 10, 1e6), ("2024-01-03", 10, 11, 10, 11, 1e6)])
    strategy = StrategyConfig(signal="sma-cross", fast=1, slow=2, sizing="fixed", quantity=1)
    config = RunConfig(stream="busy", strategies=[strategy], execution="fix", warmup_bars=0)
    holder = Journal(url, "busy")
    assert holder.acquire()  # an engine is running the stream
    test = {"TEST": Instrument("TEST")}
    try:
        with FixVenue(COSTS, test, ["TEST"], settings) as venue:
            with pytest.raises(StreamBusy):
                run(url, config, fix=settings.model_copy(update={"port": venue.port}))
            assert venue.sessions["QTIS"].store.next_target == 1  # it never saw a Logon
    finally:
        holder.close()


# --- a hostile venue --------------------------------------------------------------------------

TALLY = {"rounds": 0, "messages": 0, "fuzzed": 0, "fills": 0, "lost": 0, "repeated": 0}
plans = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 10_000)), max_size=40)
partials = st.lists(st.lists(st.integers(1, 33), max_size=3), min_size=1, max_size=3)


@pytest.mark.slow
@examples(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=plans,
    partials=partials,
    extras=st.lists(st.sampled_from(EXTRAS), max_size=4),
    crash_after=st.none() | st.integers(0, 12),
)
def test_a_hostile_venue_never_makes_the_gateway_lose_or_repeat_a_fill(
    tmp_path_factory, plan, partials, extras, crash_after
):
    """Whatever the wire does to the venue's messages and whatever it slips in, and with a
    crash before a journal write: every fill the venue sent is applied exactly once, nothing
    else is, the book never refuses an event, every alert expected is journaled, and no thread
    dies of an exception."""
    died: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: died.append(f"{args.thread.name}: {args.exc_value!r}")
    try:
        tally = hostile_round(tmp_path_factory.mktemp("hostile"), plan, partials, extras,
                              crash_after)  # fmt: skip
    finally:
        threading.excepthook = previous
    for key, value in (("rounds", 1), ("messages", tally.written), ("fuzzed", tally.fuzzed),
                       ("fills", len(tally.sent)), ("lost", len(tally.lost)),
                       ("repeated", len(tally.repeated))):  # fmt: skip
        TALLY[key] += value
    print(f"FIX fuzz so far: {TALLY}")
    assert (tally.lost, tally.repeated, tally.foreign, died) == ([], [], [], [])
    for extra in extras:
        if extra in ALERTS:
            assert ALERTS[extra] in tally.alerts
