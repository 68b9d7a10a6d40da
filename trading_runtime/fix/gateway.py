"""The engine's execution over FIX 4.4: the initiator side of a session with a venue.

Orders go out as NewOrderSingle, cancels as OrderCancelRequest; the venue's ExecutionReports are
turned into the events the simulator returns (same types, payloads and keys). The session's
reader thread queues them; the engine takes them in ``on_bar``.

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
from trading_runtime.domain import Order, OrderStatus
from trading_runtime.fix.messages import ORD_STATUS, cancel_request, event_from, new_order
from trading_runtime.fix.protocol import FieldProblem, MsgType, Tag, required, text
from trading_runtime.fix.session import FixSessionError, Session
from trading_runtime.fix.store import FileStore
from trading_runtime.instruments import Instrument
from trading_runtime.settings import FixSettings

log = logging.getLogger(__name__)
INVALID_MSG_TYPE = 11  # SessionRejectReason
FINAL = {ORD_STATUS[s] for s in (OrderStatus.FILLED, OrderStatus.CANCELLED,
                                 OrderStatus.REJECTED, OrderStatus.EXPIRED)}  # fmt: skip


class FixGateway:
    def __init__(self, instruments: dict[str, Instrument], settings: FixSettings):
        self.settings = s = settings
        self.instruments = instruments
        store = FileStore(s.store_dir / f"{s.sender_comp_id}-{s.target_comp_id}")
        self.session = Session(
            s.sender_comp_id, s.target_comp_id, store, self._on_app, s.heartbeat_seconds, True
        )
        self._orders: dict[str, Order] = {}  # open orders sent or restored: what a cancel needs
        self._cancels: dict[str, tuple[str, str]] = {}  # asked for: (reason, actor) by order
        self._refused: set[str] = set()  # cancels the venue answered with OrderCancelReject
        self._inbox: list[ev.Event] = []
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
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _live(self) -> None:
        if not self.session.logged_on.is_set():
            log.warning("FIX session to %s is down: logging on again", self.settings.target_comp_id)
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
            self._orders[order.client_id] = order
            self.session.send(MsgType.NEW_ORDER_SINGLE, new_order(order, now))
        answers = self._take([o.client_id for o in orders], (ev.ORDER_ACCEPTED, ev.ORDER_REJECTED))
        return [answers[o.client_id] for o in orders if o.client_id in answers]

    def cancel(self, client_id: str, reason: str, actor: str = "engine") -> ev.Event | None:
        """The venue's confirmation as the simulator words it, or None when the venue does not
        know the order (OrderCancelReject) or it was never sent through this gateway."""
        order = self._orders.get(client_id)
        if order is None:
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
            events, self._inbox = self._inbox, []
        return events

    def restore(self, orders: list[Order], steps: dict[str, int]) -> list[ev.Event]:
        """The venue still holds the accepted orders; the unacknowledged ones are sent again
        (the venue knows them by their client order ids)."""
        self._orders.update((o.client_id, o) for o in orders)
        events = []
        for order in orders:
            if order.status == OrderStatus.SUBMITTED:
                events += self.submit([order], steps[order.client_id])
        return events

    def observe(self, bar: CrossSection) -> None:
        """Nothing to do: the venue models its own market."""

    # --- the venue's messages (the session's reader thread) ---------------------------------

    def _on_app(self, msg: FixMessage) -> None:
        kind = text(msg, Tag.MSG_TYPE)
        with self._arrived:
            if kind == MsgType.EXECUTION_REPORT:
                event = event_from(msg, self.instruments, self._cancels)
                if required(msg, Tag.ORD_STATUS) in FINAL:
                    order_id = text(msg, Tag.ORIG_CL_ORD_ID) or text(msg, Tag.CL_ORD_ID)
                    self._orders.pop(order_id, None)
                if event is not None:
                    self._inbox.append(event)
            elif kind == MsgType.ORDER_CANCEL_REJECT:
                client_id = required(msg, Tag.ORIG_CL_ORD_ID)
                log.info("venue refused to cancel %s: %s", client_id, text(msg, Tag.TEXT))
                self._cancels.pop(client_id, None)
                self._refused.add(client_id)
            else:
                raise FieldProblem(f"unsupported MsgType {kind}", INVALID_MSG_TYPE, Tag.MSG_TYPE)
            self._arrived.notify_all()

    def _take(self, client_ids: list[str], types: tuple[str, ...]) -> dict[str, ev.Event | None]:
        """The first event of ``types`` of each order, out of the inbox (None: a cancel the
        venue refused), waiting up to the answer timeout; what is missing stays to come later."""
        wanted, found = set(client_ids), {}
        deadline = time.monotonic() + self.settings.answer_timeout
        with self._arrived:
            while True:
                for event in list(self._inbox):
                    client_id = getattr(event, "client_id", None)
                    if event.type in types and client_id in wanted and client_id not in found:
                        found[client_id] = event
                        self._inbox.remove(event)
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
