"""Bars for a venue of one instrument ("X"), a day apart from a fixed first session; and
``ScriptedVenue``, a FIX acceptor that sends what a test tells it to - honest reports, reports
no honest venue sends, admin messages out of turn - through a ``Wire`` that may mangle every
message it writes (drop, duplicate, reorder, truncate, corrupt, prefix with garbage); and
``RawClient``, a FIX client that writes whatever a test says to a venue."""

from __future__ import annotations

import itertools
import socket
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from simplefix import FixMessage, FixParser
from simplefix.errors import ParsingError

from trading_runtime.broker import CrossSection
from trading_runtime.domain import Fill, Order, OrderStatus, Side
from trading_runtime.fix import messages
from trading_runtime.fix.messages import ExecType, order_from
from trading_runtime.fix.protocol import FieldProblem, MsgType, Tag, required, text
from trading_runtime.fix.session import Session, shut
from trading_runtime.fix.store import FileStore
from trading_runtime.settings import FixSettings

DAY0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
ACTIONS = ("pass", "drop", "duplicate", "hold", "truncate", "corrupt", "garbage")


def bar(step: int, o, h, lo, c, v=1e6) -> CrossSection:
    arr = lambda x: np.array([x], dtype=float)  # noqa: E731
    return CrossSection(step, DAY0 + timedelta(days=step), arr(o), arr(h), arr(lo), arr(c), arr(v))


def reframe(data: bytes, change: Callable[[list[tuple[bytes, bytes]]], list]) -> bytes:
    """``data`` (one message) with its fields changed by ``change``, BodyLength and CheckSum
    recomputed: a well-framed message with whatever content a test wants."""
    parser = FixParser()
    parser.append_buffer(data)
    pairs = [(t, v) for t, v in parser.get_message().pairs if t not in (b"8", b"9", b"10")]
    msg = FixMessage()
    msg.append_pair(8, b"FIX.4.4")
    for tag, value in change(pairs):
        msg.append_pair(tag, value)
    return msg.encode()


def latin1(data: bytes) -> bytes:
    """A message whose Text (58) says LATIN1 gets a Latin-1 Text instead, well framed (a
    ``ScriptedVenue.edit``)."""
    if b"\x0158=LATIN1\x01" not in data:
        return data
    return reframe(data, lambda pairs: [(t, b"d\xe9j\xe0 vu" if t == b"58" else v)
                                        for t, v in pairs])  # fmt: skip


class Wire:
    """A venue's connection that writes each message as its venue's plan says: ``(action, n)``
    per message, ``n`` choosing where to cut or which byte to flip; reading and closing are the
    socket's own. A held message goes out after the next one (two messages swapped)."""

    def __init__(self, sock: socket.socket, venue: ScriptedVenue) -> None:
        self.sock, self.venue = sock, venue
        self.held: bytes | None = None

    def sendall(self, data: bytes) -> None:
        if self.venue.edit is not None:
            data = self.venue.edit(data)
        action, n = self.venue.next_action()
        at = n % len(data)
        out = {
            "pass": [data],
            "drop": [],
            "duplicate": [data, data],
            "hold": [],
            "truncate": [data[:at]],
            "corrupt": [data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]],
            "garbage": [bytes([n % 256, (n * 7) % 256, 61, (n * 13) % 256, 1]) + data],
        }[action]
        held, self.held = self.held, (data if action == "hold" else None)
        if held is not None:
            out.append(held)
        self.sock.sendall(b"".join(out))

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def settimeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


class ScriptedVenue:
    """One FIX session (the settings' CompIDs, seen from the venue) on a free port of 127.0.0.1.
    Its session layer is the real one (numbered, stored, resent on request); what it says is up
    to the test: orders are answered (``answer``, ``reason``), reports sent by ``report``,
    anything else by ``session.send``; ``edit`` rewrites each message before the wire's plan."""

    def __init__(self, settings: FixSettings, store: Path, plan: Sequence[tuple] = ()) -> None:
        s = settings
        self.session = Session(
            s.target_comp_id, s.sender_comp_id, FileStore(store), self._on_app,
            s.heartbeat_seconds, False,
        )  # fmt: skip
        self.orders: dict[str, Order] = {}
        self.received: Counter[str] = Counter()  # NewOrderSingles by ClOrdID
        self.reports: dict[str, list] = {}  # the fields of each report sent, by ExecID
        self.answer: ExecType | None = ExecType.NEW  # to a NewOrderSingle (None: silence)
        self.reason: str | None = None  # the answer's Text (58)
        self.plan, self.written, self.fuzzed = list(plan), 0, 0
        self.edit: Callable[[bytes], bytes] | None = None
        self._exec_ids = itertools.count(1)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ScriptedVenue:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc) -> None:
        shut(self._listener)
        self.session.drop()
        for thread in self._threads:
            thread.join(5.0)
        self.session.store.close()

    def next_action(self) -> tuple[str, int]:
        """The wire's next action (the session writes under its lock: one writer at a time)."""
        self.written += 1
        action = tuple(self.plan.pop(0)) if self.plan else ("pass", 0)
        self.fuzzed += action[0] != "pass"
        return action

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="fix-scripted", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        parser = FixParser()
        sock.settimeout(2.0)
        try:
            while (first := parser.get_message()) is None:
                data = sock.recv(65536)
                if not data:
                    raise OSError("closed before a Logon")
                parser.append_buffer(data)
        except (OSError, ParsingError):  # a client that never logs on: forget it
            sock.close()
            return
        self.session.run(Wire(sock, self), parser, first)

    # --- what the venue says ----------------------------------------------------------------

    def report(
        self,
        client_id: str,
        kind: ExecType,
        *,
        qty: float | None = None,
        price: float = 10.0,
        exec_id: str | None = None,
        when: datetime = DAY0,
        reason: str | None = None,
        drop: Sequence[int] = (),
    ) -> str:
        """Send the ExecutionReport of ``kind`` for ``client_id`` (a fill of ``qty`` when
        given; an order it does not know is reported as a buy of 100 X); fields in ``drop`` are
        left out. Returns the ExecID."""
        exec_id = exec_id or f"S{next(self._exec_ids)}"
        order = self.orders.get(client_id) or Order(client_id, "acct", "X", Side.BUY, 100.0)
        if order.status == OrderStatus.NEW:
            order = order.moved_to(OrderStatus.SUBMITTED).moved_to(OrderStatus.ACCEPTED)
        fill = None
        if qty is not None:
            fill = Fill(exec_id, client_id, order.account, order.symbol, order.side, qty, price,
                        0.0, when, price, 1.0)  # fmt: skip
            order = order.with_fill(fill)
        elif kind == ExecType.CANCELED:
            order = order.moved_to(OrderStatus.CANCELLED)
        if client_id in self.orders:
            self.orders[client_id] = order
        fields = messages.report(order, kind, exec_id, when, reason=reason, fill=fill)
        self.reports[exec_id] = [f for f in fields if f[0] not in drop]
        self.session.send(MsgType.EXECUTION_REPORT, self.reports[exec_id])
        return exec_id

    def repeat(self, exec_id: str) -> None:
        """Send the report of ``exec_id`` again as a new message (not a PossDup resend)."""
        self.session.send(MsgType.EXECUTION_REPORT, self.reports[exec_id])

    def _on_app(self, msg: FixMessage) -> None:
        kind = text(msg, Tag.MSG_TYPE)
        if kind == MsgType.NEW_ORDER_SINGLE:
            order = order_from(msg)
            self.received[order.client_id] += 1
            if self.answer is not None and order.client_id not in self.orders:
                ok = self.answer == ExecType.NEW
                status = OrderStatus.ACCEPTED if ok else OrderStatus.REJECTED
                order = order.moved_to(OrderStatus.SUBMITTED).moved_to(status)
                self.orders[order.client_id] = order
                self.report(order.client_id, self.answer, reason=self.reason)
        elif kind == MsgType.ORDER_STATUS_REQUEST:
            self._status(required(msg, Tag.CL_ORD_ID))
        else:
            raise FieldProblem(f"unsupported MsgType {kind}", 11, Tag.MSG_TYPE)

    def _status(self, client_id: str) -> None:
        order = self.orders.get(client_id)
        unknown = order is None
        if unknown:  # as FIX answers: OrdStatus Rejected, OrdRejReason 5 (unknown order)
            order = Order(client_id, "acct", "X", Side.BUY, 1.0).moved_to(OrderStatus.SUBMITTED)
            order = order.moved_to(OrderStatus.REJECTED)
        fields = messages.report(order, ExecType.ORDER_STATUS, "0", DAY0)
        self.session.send(MsgType.EXECUTION_REPORT, fields + [(Tag.ORD_REJ_REASON, "5")] * unknown)


class RawClient:
    """A hand-driven FIX client: it writes what a test says, however wrong."""

    def __init__(self, port: int, comp_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
        self.parser, self.comp_id, self.seq = FixParser(), comp_id, 0

    def message(self, kind: str, *fields: tuple[int, object]) -> FixMessage:
        self.seq += 1
        msg = FixMessage()
        header = [(8, "FIX.4.4"), (35, kind), (49, self.comp_id), (56, "VENUE"), (34, self.seq)]
        for tag, value in [*header, (52, "20240102-14:30:00.000"), *fields]:
            msg.append_pair(tag, value)
        return msg

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> FixMessage:
        while (msg := self.parser.get_message()) is None:
            self.parser.append_buffer(self.sock.recv(65536))
        return msg


def logged_on(venue, heartbeat: int = 30) -> RawClient:
    """A RawClient with CompID RAW logged on to ``venue`` (a ``FixVenue`` serving RAW)."""
    client = RawClient(venue.port, "RAW")
    client.send(client.message("A", (98, 0), (108, heartbeat)).encode())
    assert client.read().get(35) == b"A"
    return client
