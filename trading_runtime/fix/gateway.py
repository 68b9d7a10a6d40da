"""The engine's execution over FIX 4.4: the initiator side of a session with a venue.

Orders go out as NewOrderSingle, cancels as OrderCancelRequest; the venue's ExecutionReports are
checked against the gateway's view of its orders (``reports.Orders``) and turned into the events
the simulator returns (same types, payloads and keys), or into journaled alerts when the engine
could not apply them. The session's reader thread queues them; the engine takes them in
``on_bar`` (and a submit or cancel takes its answer, when nothing else came before it).

Nothing received is lost: the session holds each application message until the engine says
that the events it produced are journaled (``journaled``, after each commit); only then does
the saved incoming sequence number move past it. A process that dies in between asks the
venue for those messages again at its next Logon.

The session logs on when first needed - after the caller took the stream's lock, and after
``restore`` has told it the journal's open orders, which it then asks the venue about
(OrderStatusRequest) before sending again only the ones the venue does not know.

A bar's reports are complete when the venue answers a TestRequest sent by ``on_bar``: the venue
writes in sequence order, so every report it sent before the Heartbeat has arrived by then (the
in-process ``FixVenue`` handles a bar in its own ``on_bar``, which runs before the engine's).
No call waits longer than ``answer_timeout``: an answer that comes later is returned by a later
``on_bar``, and a session found down is logged on again first (sequence numbers continue; the
gap is recovered by ResendRequest).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime

from simplefix import FixMessage

from trading_runtime import events as ev
from trading_runtime.broker import CrossSection
from trading_runtime.domain import Order
from trading_runtime.fix.messages import cancel_request, new_order, status_request
from trading_runtime.fix.protocol import FieldProblem, MsgType, Tag, required, text
from trading_runtime.fix.reports import Orders, alert
from trading_runtime.fix.session import FixSessionError, Session
from trading_runtime.fix.store import FileStore
from trading_runtime.instruments import Instrument
from trading_runtime.settings import FixSettings

log = logging.getLogger(__name__)
INVALID_MSG_TYPE = 11  # SessionRejectReason


class FixGateway:
    def __init__(self, instruments: dict[str, Instrument], settings: FixSettings):
        self.settings = s = settings
        self.instruments = instruments
        store = FileStore(s.session_dir(s.sender_comp_id, s.target_comp_id))  # locked
        self.session = Session(
            s.sender_comp_id, s.target_comp_id, store, self._on_app, s.heartbeat_seconds, True,
            hold=True,
        )  # fmt: skip
        self.orders = Orders(instruments)  # every order sent or restored, as reported
        self._cancels: dict[str, tuple[str, str]] = {}  # asked for: (reason, actor) by order
        self._refused: set[str] = set()  # cancels the venue answered with OrderCancelReject
        self._inbox: list[tuple[ev.Event, int]] = []  # with the message each came from
        self._handed: list[int] = []  # messages whose events went out, not yet journaled
        self._arrived = threading.Condition()

    # --- the session ------------------------------------------------------------------------

    def connect(self) -> None:
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=s.connect_timeout)
        except OSError as exc:
            where = f"{s.host}:{s.port}"
            raise FixSessionError(f"cannot reach the FIX venue at {where}: {exc}") from exc
        self.session.logon(sock, s.answer_timeout)

    def close(self) -> None:
        self.session.logout(self.settings.answer_timeout)
        self.session.store.close()

    def __enter__(self) -> FixGateway:
        return self  # the session logs on when first needed

    def __exit__(self, *exc) -> None:
        self.close()

    def _live(self) -> None:
        if not self.session.logged_on.is_set():
            log.info("FIX session to %s is down: logging on", self.settings.target_comp_id)
            self.connect()

    # --- the execution interface ------------------------------------------------------------

    def submit(self, orders: list[Order], step: int) -> list[ev.Event]:
        """One NewOrderSingle per order, answered by its first report (New or Rejected).
        ``step`` is unused: a venue times orders by its own market."""
        if not orders:
            return []
        self._live()
        now = datetime.now(UTC)
        for order in orders:
            with self._arrived:
                self.orders.track(order)
            self.session.send(MsgType.NEW_ORDER_SINGLE, new_order(order, now))
        answers = self._take([o.client_id for o in orders], (ev.ORDER_ACCEPTED, ev.ORDER_REJECTED))
        return [answers[o.client_id] for o in orders if o.client_id in answers]

    def cancel(self, client_id: str, reason: str, actor: str = "engine") -> ev.Event | None:
        """The venue's confirmation as the simulator words it, or None when the venue does not
        know the order (OrderCancelReject) or it was never sent through this gateway."""
        with self._arrived:
            order = self.orders.known.get(client_id)
            if order is None or not order.status.is_open:
                return None
        self._live()
        with self._arrived:
            self._cancels[client_id] = (reason, actor)
            self._refused.discard(client_id)
        cancel_id = f"{client_id}-X{self.session.store.next_sender}"
        fields = cancel_request(order, cancel_id, reason, datetime.now(UTC))
        self.session.send(MsgType.ORDER_CANCEL_REQUEST, fields)
        return self._take([client_id], (ev.ORDER_CANCELLED,)).get(client_id)

    def on_bar(self, bar: CrossSection) -> list[ev.Event]:
        """Every report received since the last call, once the venue has answered a
        TestRequest sent now (all it sent before has then arrived)."""
        self._live()
        timeout = self.settings.answer_timeout
        if not self.session.test(f"bar-{bar.step}", timeout):
            log.warning("no Heartbeat in %s s: bar %s's reports may come later", timeout, bar.step)
        with self._arrived:
            return self._hand(len(self._inbox))

    def restore(self, orders: list[Order], steps: dict[str, int]) -> list[ev.Event]:
        """After a restart: the journal's open orders. Logging on brings again what the venue
        sent that the journal lacks; each order is then asked about (OrderStatusRequest), and
        only the unacknowledged ones the venue does not know (or did not answer about) are sent
        again. Returns every event received meanwhile, in the venue's order."""
        if not orders:
            return []
        with self._arrived:
            for order in orders:
                self.orders.track(order)
            self.orders.asked.update(o.client_id for o in orders)
        self._live()
        for order in orders:
            self.session.send(MsgType.ORDER_STATUS_REQUEST, status_request(order))
        if not self.session.test("restore", self.settings.answer_timeout):
            log.warning("the venue did not answer every order status in time")
        with self._arrived:
            events = self._hand(len(self._inbox))
            again = self.orders.to_send_again()
        return events + self.submit([o for o in orders if o.client_id in again], 0)

    def observe(self, bar: CrossSection) -> None:
        """Nothing to do: the venue models its own market."""

    def journaled(self) -> None:
        """Every event handed out so far is journaled: their messages count as received."""
        with self._arrived:
            waiting = {seq for _, seq in self._inbox}
            done = {seq for seq in self._handed if seq not in waiting}
            self._handed = [seq for seq in self._handed if seq in waiting]
        self.session.release(done)

    # --- the venue's messages (the session's reader thread) ---------------------------------

    def _on_app(self, msg: FixMessage) -> None:
        """Queue the events of ``msg`` (held by the session until they are journaled); a report
        that cannot be read gets a session Reject and becomes an alert."""
        seq, kind = int(required(msg, Tag.MSG_SEQ_NUM)), text(msg, Tag.MSG_TYPE)
        problem = None
        with self._arrived:
            try:
                events = self._events(kind, msg)
            except FieldProblem as exc:
                problem = exc
                why = f"an execution report QTIS cannot read, rejected: {exc}"
                bad = kind == MsgType.EXECUTION_REPORT
                events = [alert(msg, "bad_report", why)] if bad else []
            self._inbox += [(event, seq) for event in events]
            self._arrived.notify_all()
        if problem is not None:
            self.session.reject(seq, kind, problem)
        if not events:
            self.session.release([seq])

    def _events(self, kind: str | None, msg: FixMessage) -> list[ev.Event]:
        if kind == MsgType.EXECUTION_REPORT:
            return self.orders.events(msg, self._cancels)
        if kind == MsgType.ORDER_CANCEL_REJECT:
            client_id = required(msg, Tag.ORIG_CL_ORD_ID)
            log.info("venue refused to cancel %s: %s", client_id, text(msg, Tag.TEXT))
            self._cancels.pop(client_id, None)
            self._refused.add(client_id)
            return []
        raise FieldProblem(f"unsupported MsgType {kind}", INVALID_MSG_TYPE, Tag.MSG_TYPE)

    def _hand(self, count: int) -> list[ev.Event]:
        """The first ``count`` events of the inbox, out of it (under ``_arrived``)."""
        taken, self._inbox = self._inbox[:count], self._inbox[count:]
        self._handed += [seq for _, seq in taken]
        return [event for event, _ in taken]

    def _take(self, client_ids: list[str], types: tuple[str, ...]) -> dict[str, ev.Event | None]:
        """The first event of ``types`` of each order (None: a cancel the venue refused),
        waiting up to the answer timeout. Only answers at the head of the inbox are taken, so
        the engine gets the venue's reports in the venue's order; what is missing stays to
        come later (with ``on_bar``)."""
        wanted, found = set(client_ids), {}
        deadline = time.monotonic() + self.settings.answer_timeout
        with self._arrived:
            while True:
                head = 0
                for event, _ in self._inbox:
                    client_id = getattr(event, "client_id", None)
                    if event.type not in types or client_id not in wanted - found.keys():
                        break
                    found[client_id] = event
                    head += 1
                self._hand(head)
                for client_id in (wanted & self._refused) - found.keys():
                    found[client_id] = None
                    self._refused.discard(client_id)
                left = deadline - time.monotonic()
                if len(found) == len(wanted) or left <= 0:
                    break
                self._arrived.wait(left)
        if len(found) < len(wanted):
            log.warning("no answer within %s s for %s: it will come with a later bar",
                        self.settings.answer_timeout, sorted(wanted - found.keys()))  # fmt: skip
        return found
