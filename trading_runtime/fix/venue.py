"""An in-process FIX 4.4 acceptor that simulates a venue, for tests and demonstrations.

It listens on 127.0.0.1 (a free port unless one is set) and serves one session per known client
CompID. Orders from every session rest in one ``SimulatedBroker`` - the project's own matching,
costs and volume limits - and are matched when the venue is given a bar (``on_bar``): a real
venue has its own market, so the bars reach it directly, never through the gateway. Every
broker event becomes an ExecutionReport to the order's session; reports written while a client
is disconnected are stored and resent when it logs on again. A fill's ExecID is the
simulator's fill id without the order's id, so the gateway's fill ids (ClOrdID:ExecID) are the
simulator's. An OrderStatusRequest is answered with the order as the venue has it (ExecType I),
or as unknown (OrdStatus 8, OrdRejReason 5).
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from datetime import UTC, datetime

from simplefix import FixMessage, FixParser
from simplefix.errors import ParsingError

from trading_runtime import events as ev
from trading_runtime.broker import CrossSection, SimulatedBroker
from trading_runtime.domain import Order, OrderStatus
from trading_runtime.fix.messages import ORD_STATUS, ExecType, order_from, report
from trading_runtime.fix.protocol import (
    FieldProblem,
    MsgType,
    Tag,
    build,
    fix_time,
    required,
    text,
)
from trading_runtime.fix.session import Session, shut
from trading_runtime.fix.store import FileStore
from trading_runtime.instruments import Instrument
from trading_runtime.settings import CostModel, FixSettings

log = logging.getLogger(__name__)
UNKNOWN_ORDER = "1"  # CxlRejReason
CANCEL_REQUEST = "1"  # CxlRejResponseTo
INVALID_MSG_TYPE = 11  # SessionRejectReason
UNKNOWN_ORDER_STATUS = "5"  # OrdRejReason of a status request about an order it never had


class FixVenue:
    def __init__(
        self,
        costs: CostModel,
        instruments: dict[str, Instrument],
        symbols: list[str],
        settings: FixSettings,
        clients: list[str] | None = None,
    ) -> None:
        """``clients``: the SenderCompIDs allowed to log on (default: the settings' one)."""
        self.settings = s = settings
        self.comp_id = s.target_comp_id
        self.broker = SimulatedBroker(costs, instruments, symbols)
        self.sessions = {
            client: Session(
                self.comp_id,
                client,
                FileStore(s.session_dir(self.comp_id, client)),
                lambda msg, client=client: self._on_app(client, msg),
                s.heartbeat_seconds,
                False,
            )
            for client in clients or [s.sender_comp_id]
        }
        self._lock = threading.Lock()  # the broker and the venue's view of the orders
        self._orders: dict[str, Order] = {}  # accepted and still working
        self._done: dict[str, Order] = {}  # ended: for order status requests
        self._owner: dict[str, str] = {}  # client order id -> the session that sent it
        self._exec_ids = itertools.count(1)
        self._step = -1  # the last bar matched: orders received now can fill from the next
        self._listener = socket.create_server((s.host, s.port))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def start(self) -> FixVenue:
        self._spawn(self._accept, "fix-venue")
        return self

    def close(self) -> None:
        shut(self._listener)
        for session in self.sessions.values():
            session.drop()
        for thread in self._threads:
            thread.join(self.settings.answer_timeout)
        for session in self.sessions.values():
            session.store.close()

    def __enter__(self) -> FixVenue:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- connections ------------------------------------------------------------------------

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._spawn(self._serve, "fix-venue-session", sock)

    def _serve(self, sock: socket.socket) -> None:
        """The first message (a Logon) names the session the connection belongs to."""
        parser = FixParser()
        sock.settimeout(self.settings.connect_timeout)
        try:
            while (first := parser.get_message()) is None:
                data = sock.recv(65536)
                if not data:
                    raise OSError("closed before a Logon")
                parser.append_buffer(data)
        except (OSError, ParsingError) as exc:  # a silent or garbling client: drop it
            log.warning("FIX venue: no Logon on a new connection: %s", exc)
            sock.close()
            return
        client = text(first, Tag.SENDER_COMP_ID)
        session = self.sessions.get(client)
        if session is None:
            reason = f"unknown SenderCompID {client!r}: this venue serves {sorted(self.sessions)}"
            now, fields = fix_time(datetime.now(UTC)), [(Tag.TEXT, reason)]
            refusal = build(MsgType.LOGOUT, self.comp_id, client or "?", 1, now, fields)
            sock.sendall(refusal.encode())
            sock.close()
            return
        session.run(sock, parser, first)

    # --- the market -------------------------------------------------------------------------

    def follow(self, feed) -> None:
        """Make ``feed`` (a ``BarFeed``) hand each bar to this venue just before the engine
        gets it: the venue's own market, as a real one has."""
        replay = feed.replay

        def replay_here(*args, **kwargs):
            for bar in replay(*args, **kwargs):
                self.on_bar(bar)
                yield bar

        feed.replay = replay_here

    def on_bar(self, bar: CrossSection) -> None:
        """Match the working orders against ``bar`` and report every event, in order."""
        with self._lock:
            events = self.broker.on_bar(bar)
            self.broker.observe(bar)
            self._step = bar.step
            for event in events:
                self._report(event, bar.ts)

    def _report(self, event: ev.Event, when: datetime) -> None:
        if event.type == ev.ORDER_FILLED:
            fill = event.fill
            order = self._orders[fill.client_id].with_fill(fill)
            self._send(order, ExecType.TRADE, when, fill=fill)
            return
        client_id = event.client_id
        order = self._orders[client_id]
        if event.type == ev.ORDER_TRIGGERED:
            self._send(order, ExecType.TRIGGERED, when)
        elif event.type == ev.ORDER_CANCELLED:
            order = order.moved_to(OrderStatus.CANCELLED)
            self._send(order, ExecType.CANCELED, when, reason=event.reason)
        elif event.type == ev.ORDER_EXPIRED:
            order = order.moved_to(OrderStatus.EXPIRED)
            self._send(order, ExecType.EXPIRED, when, reason=event.reason)

    def _send(self, order: Order, kind: ExecType, when: datetime, **extra) -> None:
        """The ExecutionReport of ``order`` (in its new state) to the session that sent it."""
        if order.status.is_open:
            self._orders[order.client_id] = order
        else:
            self._orders.pop(order.client_id, None)
            self._done[order.client_id] = order
        fill = extra.get("fill")
        exec_id = f"E{next(self._exec_ids)}"
        if fill is not None:
            exec_id = fill.fill_id.removeprefix(f"{order.client_id}:")
        fields = report(order, kind, exec_id, when, **extra)
        self.sessions[self._owner[order.client_id]].send(MsgType.EXECUTION_REPORT, fields)

    # --- order entry (a session's reader thread) --------------------------------------------

    def _on_app(self, client: str, msg: FixMessage) -> None:
        kind = text(msg, Tag.MSG_TYPE)
        with self._lock:
            if kind == MsgType.NEW_ORDER_SINGLE:
                self._new_order(client, msg)
            elif kind == MsgType.ORDER_CANCEL_REQUEST:
                self._cancel(client, msg)
            elif kind == MsgType.ORDER_STATUS_REQUEST:
                self._status(client, msg)
            else:
                raise FieldProblem(f"unsupported MsgType {kind}", INVALID_MSG_TYPE, Tag.MSG_TYPE)

    def _new_order(self, client: str, msg: FixMessage) -> None:
        now = datetime.now(UTC)
        client_id = required(msg, Tag.CL_ORD_ID)
        owner = self._owner.setdefault(client_id, client)
        try:
            order = order_from(msg)
        except ValueError as exc:  # a well-formed message, but not an order we can take
            self._refuse(client, msg, str(exc))
            return
        if owner != client:
            self._refuse(client, msg, f"ClOrdID {client_id} is another session's order")
            return
        [answer] = self.broker.submit([order], self._step)
        if answer.type == ev.ORDER_REJECTED:
            order = order.moved_to(OrderStatus.SUBMITTED).moved_to(OrderStatus.REJECTED)
            self._send(order, ExecType.REJECTED, now, reason=answer.reason)
        else:
            self._send(self.broker.working[client_id], ExecType.NEW, now)

    def _refuse(self, client: str, msg: FixMessage, reason: str) -> None:
        """An ExecutionReport Rejected for a NewOrderSingle that is not a valid order."""
        fields = [
            (Tag.ORDER_ID, "NONE"),
            (Tag.CL_ORD_ID, required(msg, Tag.CL_ORD_ID)),
            (Tag.EXEC_ID, f"E{next(self._exec_ids)}"),
            (Tag.EXEC_TYPE, ExecType.REJECTED.value),
            (Tag.ORD_STATUS, ORD_STATUS[OrderStatus.REJECTED]),
            (Tag.ACCOUNT, text(msg, Tag.ACCOUNT)),
            (Tag.SYMBOL, text(msg, Tag.SYMBOL)),
            (Tag.SIDE, text(msg, Tag.SIDE)),
            (Tag.LEAVES_QTY, 0),
            (Tag.CUM_QTY, 0),
            (Tag.AVG_PX, 0),
            (Tag.TEXT, reason),
        ]
        self.sessions[client].send(MsgType.EXECUTION_REPORT, fields)

    def _status(self, client: str, msg: FixMessage) -> None:
        """The order a status request names, as this venue has it (ExecID 0, as FIX says)."""
        client_id = required(msg, Tag.CL_ORD_ID)
        order = self._orders.get(client_id) or self._done.get(client_id)
        if order is not None and self._owner.get(client_id) == client:
            fields = report(order, ExecType.ORDER_STATUS, "0", datetime.now(UTC))
        else:
            fields = [
                (Tag.ORDER_ID, "NONE"),
                (Tag.CL_ORD_ID, client_id),
                (Tag.EXEC_ID, "0"),
                (Tag.EXEC_TYPE, ExecType.ORDER_STATUS.value),
                (Tag.ORD_STATUS, ORD_STATUS[OrderStatus.REJECTED]),
                (Tag.ORD_REJ_REASON, UNKNOWN_ORDER_STATUS),
                (Tag.SYMBOL, text(msg, Tag.SYMBOL)),
                (Tag.SIDE, text(msg, Tag.SIDE)),
                (Tag.LEAVES_QTY, 0),
                (Tag.CUM_QTY, 0),
                (Tag.AVG_PX, 0),
                (Tag.TEXT, f"unknown order {client_id}"),
            ]
        self.sessions[client].send(MsgType.EXECUTION_REPORT, fields)

    def _cancel(self, client: str, msg: FixMessage) -> None:
        client_id, cancel_id = required(msg, Tag.ORIG_CL_ORD_ID), required(msg, Tag.CL_ORD_ID)
        reason = text(msg, Tag.TEXT) or "cancel requested"
        mine = self._owner.get(client_id) == client
        if not mine or self.broker.cancel(client_id, reason, client) is None:
            fields = [
                (Tag.ORDER_ID, "NONE"),
                (Tag.CL_ORD_ID, cancel_id),
                (Tag.ORIG_CL_ORD_ID, client_id),
                (Tag.ORD_STATUS, ORD_STATUS[OrderStatus.REJECTED]),
                (Tag.CXL_REJ_RESPONSE_TO, CANCEL_REQUEST),
                (Tag.CXL_REJ_REASON, UNKNOWN_ORDER),
                (Tag.TEXT, f"unknown order {client_id}: not working at this venue"),
            ]
            self.sessions[client].send(MsgType.ORDER_CANCEL_REJECT, fields)
            return
        order = self._orders[client_id].moved_to(OrderStatus.CANCELLED)
        self._send(order, ExecType.CANCELED, datetime.now(UTC), reason=reason, cancel_id=cancel_id)
