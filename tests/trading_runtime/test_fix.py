"""The FIX 4.4 gateway against the in-process venue, over real TCP sockets: the simulator's
fills, rejects with the venue's reason, cancels, sequence-number recovery after a reconnect,
session Rejects of bad messages, and a backtest that ends exactly as the simulator's."""

from __future__ import annotations

import inspect
import json
import socket
import threading
import time

import pytest

from quant.conventions import Conventions
from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from tests.support.venue import DAY0, RawClient, bar, logged_on
from tests.support.venue_costs import BARS, COSTS, hand_config, run_through
from trading_runtime import events as ev
from trading_runtime.broker import SimulatedBroker
from trading_runtime.domain import Order, OrderType, Side, TimeInForce
from trading_runtime.execution import Execution
from trading_runtime.fix.gateway import FixGateway
from trading_runtime.fix.messages import new_order
from trading_runtime.fix.protocol import MsgType
from trading_runtime.fix.session import FixSessionError
from trading_runtime.fix.venue import FixVenue
from trading_runtime.instruments import Instrument
from trading_runtime.runs import build_engine, report, run
from trading_runtime.settings import FixSettings, RuntimeSettings

INSTRUMENTS = {"X": Instrument("X")}


@pytest.fixture
def settings(tmp_path) -> FixSettings:
    return FixSettings(store_dir=tmp_path, answer_timeout=2.0, connect_timeout=1.0)


@pytest.fixture
def fix(settings):
    """A venue on a free port and a gateway logged on to it; both closed afterwards."""
    venue = FixVenue(COSTS, INSTRUMENTS, ["X"], settings)
    gateway = FixGateway(INSTRUMENTS, settings.model_copy(update={"port": venue.port}))
    with venue, gateway:
        yield venue, gateway


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    assert [t.name for t in threading.enumerate() if t.name.startswith("fix")] == []


def order(cid: str, qty: float = 100.0, symbol: str = "X", **kw) -> Order:
    return Order(cid, "acct", symbol, kw.pop("side", Side.BUY), qty, created=DAY0, **kw)


def both(fix, orders: dict[int, list[Order]], bars) -> tuple[list, list]:
    """The events of the same orders and bars through FIX and through the simulator."""
    venue, gateway = fix
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, ["X"])
    got, want = [], []
    for b in bars:
        venue.on_bar(b)
        got += gateway.on_bar(b)
        want += simulator.on_bar(b)
        simulator.observe(b)
        for o in orders.get(b.step, []):
            got += gateway.submit([o], b.step)
            want += simulator.submit([o], b.step)
    return got, want


def fills(events) -> list[tuple[float, float]]:
    return [(e.fill.quantity, e.fill.price) for e in events if e.type == ev.ORDER_FILLED]


def test_the_simulator_and_the_gateway_share_the_execution_interface(settings):
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, ["X"])
    gateway = FixGateway(INSTRUMENTS, settings)
    assert isinstance(simulator, Execution) and isinstance(gateway, Execution)
    for name in ("submit", "cancel", "on_bar", "restore", "observe", "journaled"):
        expected = list(inspect.signature(getattr(Execution, name)).parameters)
        assert list(inspect.signature(getattr(SimulatedBroker, name)).parameters) == expected
        assert list(inspect.signature(getattr(FixGateway, name)).parameters) == expected
    gateway.session.store.close()


def test_a_market_order_fills_as_the_simulator_fills_it(fix):
    got, want = both(fix, {0: [order("m")]}, [bar(0, 10, 10, 10, 10), bar(1, 10.5, 11, 10, 10.8)])
    assert [e.type for e in got] == [ev.ORDER_ACCEPTED, ev.ORDER_FILLED]
    assert got == want  # types, payloads (price, fee, reference, ts) and keys
    assert fills(got) == [(100, pytest.approx(10.5 * 1.0015))]


def test_a_big_order_fills_partly_over_two_bars_by_participation(fix):
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10.2, 9.9, 10, 1000), bar(2, 10, 10, 10, 10, 1000)]
    got, want = both(fix, {0: [order("big", 150)]}, bars)
    assert [q for q, _ in fills(got)] == [100, 50]
    assert got == want


@pytest.mark.parametrize(
    ("kind", "ohlc", "expected"),
    [
        ({"type": OrderType.LIMIT, "limit_price": 9.5}, (10, 10.2, 9.4, 10), ev.ORDER_FILLED),
        (
            {"type": OrderType.STOP_LIMIT, "stop_price": 11.0, "limit_price": 11.2},
            (11.5, 11.8, 11.4, 11.6),
            ev.ORDER_TRIGGERED,
        ),
        (
            {"type": OrderType.LIMIT, "limit_price": 5.0, "tif": TimeInForce.DAY},
            (10, 10.2, 9.8, 10),
            ev.ORDER_EXPIRED,
        ),
        ({"tif": TimeInForce.IOC}, (10, 10, 10, 10, 500), ev.ORDER_CANCELLED),  # rest of IOC
        ({"tif": TimeInForce.FOK}, (10, 10, 10, 10, 500), ev.ORDER_CANCELLED),
    ],
)
def test_every_kind_of_report_becomes_the_simulators_event(fix, kind, ohlc, expected):
    bars = [bar(0, 10, 10, 10, 10), bar(1, *ohlc), bar(2, *ohlc)]
    got, want = both(fix, {0: [order("k", **kind)]}, bars)
    assert expected in [e.type for e in got]
    assert got == want


def test_an_ioc_remainder_is_cancelled_after_its_partial_fill(fix):
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10, 500)]
    got, want = both(fix, {0: [order("ioc", 120, tif=TimeInForce.IOC)]}, bars)
    assert [e.type for e in got] == [ev.ORDER_ACCEPTED, ev.ORDER_FILLED, ev.ORDER_CANCELLED]
    assert fills(got)[0][0] == 50 and got[-1].reason == "rest of IOC"
    assert got == want


def test_a_reject_carries_the_venues_reason(fix):
    _, gateway = fix
    [answer] = gateway.submit([order("z", symbol="ZZZ")], 0)
    assert answer == ev.OrderRejected("z", "no market data for ZZZ", key="rejected:z")


def test_a_resting_limit_is_cancelled_and_a_second_cancel_is_refused(fix):
    venue, gateway = fix
    simulator = SimulatedBroker(COSTS, INSTRUMENTS, ["X"])
    limit = order("lim", type=OrderType.LIMIT, limit_price=5.0)
    assert gateway.submit([limit], 0) == simulator.submit([limit], 0)
    venue.on_bar(bar(1, 10, 10.2, 9.8, 10))
    assert gateway.on_bar(bar(1, 10, 10.2, 9.8, 10)) == []
    confirmed = gateway.cancel("lim", "requested", actor="operator")
    assert confirmed == simulator.cancel("lim", "requested", actor="operator")
    assert confirmed == ev.OrderCancelled("lim", "requested", "operator", key="order_cancelled:lim")
    assert gateway.cancel("lim", "again") is None  # the venue no longer knows it
    assert gateway.cancel("never-sent", "requested") is None
    assert venue.broker.working == {}


def test_a_reconnect_recovers_the_gap_both_ways_without_loss_or_repeat(fix):
    venue, gateway = fix
    venue_side = venue.sessions["QTIS"]
    gateway.submit([order("big", 150)], 0)
    venue.on_bar(bar(1, 10, 10.2, 9.9, 10, 1000))
    assert fills(gateway.on_bar(bar(1, 10, 10.2, 9.9, 10, 1000))) == [(100, pytest.approx(10.015))]
    gateway.session.drop()  # the link goes down mid-session
    venue.on_bar(bar(2, 10, 10, 10, 10, 1000))  # the last 50 fill while the gateway is away
    late = order("late", 10)
    gateway.orders.track(late)  # as submit() does
    gateway.session.send(MsgType.NEW_ORDER_SINGLE, new_order(late, DAY0))  # stored, not sent
    venue_sent, gateway_sent = venue_side.store.next_sender, gateway.session.store.next_sender
    assert gateway.session.store.next_target < venue_sent  # a gap on each side
    assert venue_side.store.next_target < gateway_sent

    events = gateway.on_bar(bar(2, 10, 10, 10, 10, 1000))  # logs on again first
    assert [e.type for e in events] == [ev.ORDER_FILLED, ev.ORDER_ACCEPTED]
    assert fills(events) == [(50, pytest.approx(10.015))]
    assert events[1].client_id == "late"
    assert gateway.session.recovered >= 1 and venue_side.recovered >= 1  # resent as PossDup
    assert "late" in venue.broker.working  # the order sent while down reached the venue once
    # sequence numbers went on from where they were, and both sides agree on them
    assert venue_side.store.next_sender > venue_sent
    assert gateway.session.store.next_target == venue_side.store.next_sender
    assert venue_side.store.next_target == gateway.session.store.next_sender
    venue.on_bar(bar(3, 10, 10, 10, 10, 1000))
    assert fills(gateway.on_bar(bar(3, 10, 10, 10, 10, 1000))) == [(10, pytest.approx(10.015))]


def test_messages_resent_again_are_ignored_as_duplicates(fix):
    venue, gateway = fix
    gateway.submit([order("m")], 0)
    venue.on_bar(bar(1, 10, 10, 10, 10))
    assert len(fills(gateway.on_bar(bar(1, 10, 10, 10, 10)))) == 1
    gateway.session.request_resend(1)  # everything again, with PossDupFlag=Y
    assert gateway.on_bar(bar(2, 10, 10, 10, 10)) == []  # nothing applied twice
    assert gateway.session.duplicates >= 3  # Logon gap fill, the New and the Trade reports


def test_a_venue_that_is_not_there_is_named(settings):
    gateway = FixGateway(INSTRUMENTS, settings.model_copy(update={"port": _free_port()}))
    with pytest.raises(FixSessionError, match=r"cannot reach the FIX venue at 127\.0\.0\.1"):
        gateway.connect()
    gateway.close()


# --- the session layer, from a raw client -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bad_checksum_or_a_missing_tag_gets_a_session_reject(raw_venue):
    client = logged_on(raw_venue)
    fields = [(11, "c1"), (55, "X"), (54, "1"), (60, "20240102-14:30:00"), (38, 10), (40, "1")]
    wire = client.message("D", *fields).encode()
    client.send(wire[:-4] + b"%03d\x01" % ((int(wire[-4:-1]) + 1) % 256))  # checksum off by one
    reject = client.read()
    assert (reject.get(35), reject.get(45)) == (b"3", b"2")
    assert b"bad checksum" in reject.get(58)
    client.seq -= 1  # a garbled message does not count: its number is still the one expected
    client.send(client.message("D", *[f for f in fields if f[0] != 55]).encode())  # no Symbol
    reject = client.read()
    assert (reject.get(35), reject.get(45), reject.get(371)) == (b"3", b"2", b"55")
    assert reject.get(58) == b"required tag 55 (SYMBOL) missing"
    client.send(client.message("D", *fields).encode())  # and the session carries on
    report = client.read()
    assert (report.get(35), report.get(150), report.get(11)) == (b"8", b"0", b"c1")
    client.sock.close()


def test_an_unknown_comp_id_is_refused_at_logon(raw_venue):
    client = RawClient(raw_venue.port, "STRANGER")
    client.send(client.message("A", (98, 0), (108, 30)).encode())
    answer = client.read()
    assert answer.get(35) == b"5" and b"unknown SenderCompID 'STRANGER'" in answer.get(58)
    client.sock.close()


def test_a_silent_session_gets_heartbeats_then_a_test_request(raw_venue):
    client = logged_on(raw_venue, heartbeat=1)
    started = time.monotonic()
    kinds = [client.read().get(35), client.read().get(35)]
    assert kinds == [b"0", b"1"] and time.monotonic() - started < 2.0
    client.sock.close()


# --- the engine -----------------------------------------------------------------------------


def test_a_backtest_through_fix_ends_exactly_as_the_simulators(hand_market, settings):
    url = hand_market(BARS)
    simulated = run(url, hand_config("sim")).to_json()
    serving = ServingSettings()
    # its feed, instruments and journal
    base = build_engine(
        url, hand_config("fix"), RuntimeSettings(), serving, settings, tracking=TrackingSettings()
    )
    with FixVenue(base.config.cost_model(), base.instruments, base.symbols, settings) as venue:
        venue.follow(base.feed)
        gateway = FixGateway(base.instruments, settings.model_copy(update={"port": venue.port}))
        with gateway:
            run_through(base, gateway, serving.serve_max_windows)
            store = gateway.session.store  # the engine said all it got is journaled
            assert store.saved_target == store.next_target > 1
    through_fix = report(url, "fix", Conventions()).to_json()
    ids = [f["client_id"] for f in simulated["fills"]]
    assert len(ids) >= 3 and len(set(ids)) < len(ids)  # a partial fill among them
    for key in ("fills", "equity_curve", "metrics"):
        assert through_fix[key] == simulated[key], key


@pytest.mark.slow
def test_the_cli_trades_over_fix_to_a_venue_it_starts_or_says_which_is_unreachable(
    hand_market, settings, tmp_path
):
    """`--execution fix-venue`: the same backtest over a FIX session to an in-process venue
    ends as the simulator's; `--execution fix` with no venue listening fails with its address."""
    from typer.testing import CliRunner

    from cli.app import app

    url = hand_market(BARS)
    env = {"QTIS_DATABASE_URL": url, "QTIS_HOME": str(tmp_path / ".qtis"),
           "QTIS_FIX_STORE_DIR": str(tmp_path / "fix")}  # fmt: skip
    args = ["trade", "backtest", "--signal", "sma-cross", "--fast", "1", "--slow", "2",
            "--sizing", "fixed", "--quantity", "100", "--capital", "100000", "--participation",
            "0.1", "--limit", "reducing_drawdown=none",
            "--limit", "halt_drawdown=none"]  # fmt: skip
    runner = CliRunner()
    out = {}
    for execution in ("simulated", "fix-venue"):
        out[execution] = tmp_path / f"{execution}.json"
        result = runner.invoke(app, [*args, "--execution", execution, "--stream",
                                     f"cli-{execution}", "--json-out", str(out[execution])],
                               env=env)  # fmt: skip
        assert result.exit_code == 0, result.output
    simulated, over_fix = (json.loads(p.read_text()) for p in out.values())
    assert simulated["fills"] and over_fix["fills"] == simulated["fills"]
    assert over_fix["config"]["execution"] == "fix-venue"
    port = _free_port()
    down = runner.invoke(app, [*args, "--execution", "fix", "--stream", "cli-fix-down"],
                         env=env | {"QTIS_FIX_PORT": str(port)})  # fmt: skip
    text = " ".join(down.output.split())
    assert down.exit_code == 2 and f"cannot reach the FIX venue at 127.0.0.1:{port}" in text
