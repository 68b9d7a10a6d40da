"""A FIX 4.4 session (one pair of CompIDs) over successive TCP connections.

Sequence numbers and sent application messages live in the session's ``FileStore``, so they
continue across a reconnect or a restart. At Logon each side compares the other's MsgSeqNum
with the one it expects: a higher one is a gap, answered by a ResendRequest; the other side
resends its application messages with PossDupFlag=Y and gap-fills its admin messages with a
SequenceReset-GapFill. A resend is written under the send lock, so nothing new interleaves with
it, and it reaches the last message sent: a message arriving beyond a gap is therefore dropped
(the resend brings it again), except a ResendRequest, answered at once, and a TestRequest,
answered once the gap up to it is filled - so its Heartbeat still follows every answer to what
came before it. A PossDup message below the expected number was seen already: ignored. A gap
still open a quarter heartbeat after its ResendRequest is asked for again (the request, or
the resend, may have been lost on the way).

One reader thread per connection parses the socket, answers the admin messages (Heartbeat,
TestRequest, ResendRequest, SequenceReset, Logout, session Reject for a message that fails its
checks) and hands application messages to ``on_app``, in sequence order. Nothing a peer sends
stops it: a garbled frame (checksum, body length) is rejected and not counted, so the gap it
leaves is filled by a resend; a SequenceReset may not lower the expected number; a resend
range is clamped to what was sent; bytes that never make a message are dropped past
``MAX_PENDING``; and a message that raises anyway is logged with its traceback and rejected.

A session that ``holds`` application messages (the gateway's) saves one as received only when
``release`` says its events are journaled: after a crash, the venue is asked for it again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from simplefix import FixMessage, FixParser
from simplefix.errors import ParsingError

from trading_runtime.fix.protocol import (
    ADMIN,
    VALUE_INCORRECT,
    FieldProblem,
    Fields,
    Garbled,
    MsgType,
    Tag,
    build,
    check,
    fix_time,
    number,
    required,
    text,
)
from trading_runtime.fix.store import FileStore, Stored

log = logging.getLogger(__name__)
MAX_PENDING = 1 << 20  # bytes read without completing a message: junk, dropped


class FixSessionError(ConnectionError):
    """The session could not be established or was ended by the other side."""


class Session:
    def __init__(
        self,
        sender: str,
        target: str,
        store: FileStore,
        on_app: Callable[[FixMessage], None],
        heartbeat: int,
        initiator: bool,
        hold: bool = False,
    ) -> None:
        self.sender, self.target, self.store = sender, target, store
        self.on_app, self.heartbeat, self.initiator = on_app, heartbeat, initiator
        self.hold = hold  # application messages count as received once released
        self.logged_on = threading.Event()
        self.logout_reason: str | None = None
        self.duplicates = 0  # PossDup messages already seen, ignored
        self.recovered = 0  # PossDup messages that filled a gap
        self._lock = threading.RLock()  # sequence numbers, the store and the socket
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._answers = threading.Condition()
        self._answered: set[str] = set()
        self._resend_from: int | None = None
        self._resend_at = 0.0  # when it was asked for (a request lost on the way is repeated)
        self._deferred: dict[int, str] = {}  # TestReqIDs beyond a gap, by sequence number
        self._logging_out = self._probing = False
        self._last_in = self._last_out = time.monotonic()

    # --- connections ------------------------------------------------------------------------

    def start(self, sock: socket.socket) -> None:
        """Read ``sock`` in a thread of its own (the initiator's side)."""
        self._attach(sock)
        self._reader = threading.Thread(
            target=self.run, args=(sock, FixParser()), name=f"fix-{self.sender}", daemon=True
        )
        self._reader.start()

    def run(self, sock: socket.socket, parser: FixParser, first: FixMessage | None = None) -> None:
        """Serve ``sock`` until it closes."""
        if self._sock is not sock:
            self._attach(sock)
        try:
            if first is not None:
                self._handle(first)
            while True:
                sock.settimeout(self.heartbeat / 4)  # the acceptor takes the Logon's HeartBtInt
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    self._tick()
                    continue
                if not data:
                    break
                parser.append_buffer(data)
                while (msg := _next(parser, self)) is not None:
                    self._handle(msg)
                if len(parser.get_buffer()) + sum(len(v) for _, v in parser.pairs) > MAX_PENDING:
                    parser.reset()
                    self.reject(0, None, FieldProblem(f"{MAX_PENDING} bytes without a message"))
        except OSError:
            pass  # closed under us: a drop, a logout, or the other side went away
        except Exception:  # not a message's fault (those are caught per message): say so
            log.exception("FIX session %s->%s: the reader stopped", self.sender, self.target)
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
                    self.logged_on.clear()
            shut(sock)

    def _attach(self, sock: socket.socket) -> None:
        """``sock`` is the session's connection now; a new one replaces an old (half-open) one."""
        with self._lock:
            if self._sock is not None:
                shut(self._sock)
            self._sock, self._resend_from, self._logging_out = sock, None, False
            self._deferred.clear()
            self.logged_on.clear()
        self._last_in = time.monotonic()

    def logon(self, sock: socket.socket, timeout: float) -> None:
        """The initiator's handshake on a connected ``sock``."""
        self.logout_reason = None
        self.start(sock)
        self.send(MsgType.LOGON, [(Tag.ENCRYPT_METHOD, "0"), (Tag.HEART_BT_INT, self.heartbeat)])
        if not self.logged_on.wait(timeout):
            self.drop()
            why = self.logout_reason or f"no Logon answer within {timeout} s"
            raise FixSessionError(f"FIX session {self.sender}->{self.target}: {why}")

    def logout(self, timeout: float) -> None:
        """Say goodbye, wait (bounded) for the answer, and close the connection."""
        if self.logged_on.is_set():
            self._logging_out = True
            self.send(MsgType.LOGOUT, [])
            if self._reader is not None:
                self._reader.join(timeout)
        self.drop()

    def drop(self) -> None:
        """Close the connection abruptly (the store keeps everything for the reconnect)."""
        with self._lock:
            sock, self._sock = self._sock, None
            self.logged_on.clear()
        if sock is not None:
            shut(sock)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join()

    # --- sending ----------------------------------------------------------------------------

    def send(self, kind: str, fields: Fields) -> int:
        """Number, store (application messages) and write a message; while the session is down
        it is only numbered and stored, for the other side to ask for again."""
        body = [(int(tag), v if isinstance(v, bytes) else str(v).replace("\x01", " "))
                for tag, v in fields if v is not None and str(v) != "" and v != b""]  # fmt: skip
        with self._lock:
            seq, sent = self.store.next_sender, fix_time(datetime.now(UTC))
            if kind not in ADMIN:
                self.store.save(Stored(seq, kind, sent, body))
            self.store.set_numbers(sender=seq + 1)
            if self.logged_on.is_set() or kind in (MsgType.LOGON, MsgType.LOGOUT):
                self._write(build(kind, self.sender, self.target, seq, sent, body))
        return seq

    def _write(self, msg: FixMessage) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendall(msg.encode())
            self._last_out = time.monotonic()
        except OSError:
            shut(sock)  # its reader sees the end

    def test(self, test_id: str, timeout: float) -> bool:
        """Send a TestRequest and wait for its Heartbeat: everything the other side sent before
        answering has then been received and handled."""
        with self._answers:
            self._answered.discard(test_id)
        self.send(MsgType.TEST_REQUEST, [(Tag.TEST_REQ_ID, test_id)])
        with self._answers:
            return self._answers.wait_for(lambda: test_id in self._answered, timeout)

    def request_resend(self, begin: int, end: int = 0) -> None:
        """Ask for messages ``begin`` to ``end`` (0: up to the last sent) again."""
        self._resend_from, self._resend_at = begin, time.monotonic()
        self.send(MsgType.RESEND_REQUEST, [(Tag.BEGIN_SEQ_NO, begin), (Tag.END_SEQ_NO, end)])

    def release(self, seqs) -> None:
        """The events of messages ``seqs`` (held) are journaled: they count as received."""
        self.store.release(seqs)

    def _resend(self, msg: FixMessage) -> None:
        """The messages asked for, within what was sent (a range beyond it is clamped)."""
        begin, end = number(msg, Tag.BEGIN_SEQ_NO, int), number(msg, Tag.END_SEQ_NO, int)
        with self._lock:
            last = self.store.next_sender - 1
            begin, end = max(begin, 1), last if end <= 0 else min(end, last)
            stored = self.store.sent(begin, end)
            now = fix_time(datetime.now(UTC))
            gap = None
            for seq in range(begin, end + 1):
                if seq not in stored:
                    gap = gap or seq
                    continue
                if gap is not None:
                    self._gap_fill(gap, seq, now)
                    gap = None
                m = stored[seq]
                self._write(build(m.kind, self.sender, self.target, seq, now, m.fields, m.sent))
            if gap is not None:
                self._gap_fill(gap, end + 1, now)

    def _gap_fill(self, seq: int, new_seq: int, now: str) -> None:
        fields = [(Tag.GAP_FILL_FLAG, "Y"), (Tag.NEW_SEQ_NO, str(new_seq))]
        kind = MsgType.SEQUENCE_RESET
        self._write(build(kind, self.sender, self.target, seq, now, fields, now))

    def _end(self, reason: str) -> None:
        """A Logout naming ``reason``, then the connection closes."""
        log.warning("FIX session %s->%s ends: %s", self.sender, self.target, reason)
        self.send(MsgType.LOGOUT, [(Tag.TEXT, reason)])
        with self._lock:
            if self._sock is not None:
                shut(self._sock)

    def reject(self, seq: int, kind: str | None, problem: FieldProblem) -> None:
        """A session Reject (35=3) of message ``seq`` saying what is wrong with it."""
        log.warning("FIX %s->%s rejects message %s: %s", self.sender, self.target, seq, problem)
        fields = [
            (Tag.REF_SEQ_NUM, seq),
            (Tag.REF_TAG_ID, problem.tag),
            (Tag.REF_MSG_TYPE, kind),
            (Tag.SESSION_REJECT_REASON, problem.reason),
            (Tag.TEXT, str(problem)),
        ]
        self.send(MsgType.REJECT, fields)

    # --- receiving --------------------------------------------------------------------------

    def _handle(self, msg: FixMessage) -> None:
        self._last_in, self._probing = time.monotonic(), False
        kind = text(msg, Tag.MSG_TYPE)
        claimed = text(msg, Tag.MSG_SEQ_NUM) or ""
        claimed = int(claimed) if claimed.isascii() and claimed.isdigit() else 0
        try:
            self._checked(kind, msg, claimed)
        except Exception as exc:  # a message no check foresaw: it must not stop the reader
            log.exception("FIX %s->%s cannot handle message %s", self.sender, self.target, claimed)
            with contextlib.suppress(Exception):
                self.reject(claimed, kind, FieldProblem(f"cannot handle it: {exc!r}"))

    def _checked(self, kind: str | None, msg: FixMessage, claimed: int) -> None:
        try:
            seq = check(msg, self.target, self.sender)
        except FieldProblem as problem:
            if not self.logged_on.is_set():
                self._end(f"Logon refused: {problem}")
                return
            self.reject(claimed, kind, problem)
            if claimed == self.store.next_target and not isinstance(problem, Garbled):
                self.store.set_numbers(target=claimed + 1)
            return
        try:
            self._in_sequence(kind, seq, msg)
        except FieldProblem as problem:
            self.reject(seq, kind, problem)

    def _in_sequence(self, kind: str, seq: int, msg: FixMessage) -> None:
        """Sequence-number handling of a sound message, then its dispatch."""
        if not self.logged_on.is_set():
            if kind == MsgType.LOGON:
                self._on_logon(msg, seq)
            elif kind == MsgType.LOGOUT:
                self.logout_reason = text(msg, Tag.TEXT) or "logged out"
            else:
                self._end(f"the first message must be a Logon (35=A), not 35={kind}")
            return
        expected = self.store.next_target
        if kind == MsgType.SEQUENCE_RESET and text(msg, Tag.GAP_FILL_FLAG) != "Y":  # reset mode
            self.store.set_numbers(target=_raised(msg, expected))  # its own number is ignored
            return
        if seq < expected:
            if text(msg, Tag.POSS_DUP_FLAG) == "Y":
                self.duplicates += 1
            else:
                self._end(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        if seq > expected:
            if kind == MsgType.RESEND_REQUEST:  # answered first, then our own request
                self._resend(msg)
            elif kind == MsgType.TEST_REQUEST:  # answered once what precedes it has come
                self._deferred[seq] = required(msg, Tag.TEST_REQ_ID)
            patience = self.heartbeat / 4  # the gap outlived it: the request or its answer is lost
            if self._resend_from != expected or time.monotonic() - self._resend_at > patience:
                self.request_resend(expected)
            return
        self.recovered += text(msg, Tag.POSS_DUP_FLAG) == "Y"
        if kind in ADMIN or not self.hold:
            self.store.set_numbers(target=seq + 1)
            self._dispatch(kind, msg)
        else:
            self.store.receive(seq, held=True)
            try:
                self.on_app(msg)
            except BaseException:
                self.store.release([seq])  # it gave no event to wait for
                raise
        for waited in sorted(s for s in self._deferred if s < self.store.next_target):
            self.send(MsgType.HEARTBEAT, [(Tag.TEST_REQ_ID, self._deferred.pop(waited))])

    def _on_logon(self, msg: FixMessage, seq: int) -> None:
        with self._lock:  # nothing is sent between the Logon and the ResendRequest
            expected = self.store.next_target
            if seq < expected:
                self._end(f"MsgSeqNum too low, expecting {expected} but received {seq}")
                return
            try:
                heartbeat = number(msg, Tag.HEART_BT_INT, int)
            except FieldProblem as problem:
                self._end(f"Logon refused: {problem}")
                return
            if not self.initiator:
                self.heartbeat = heartbeat
                self.send(MsgType.LOGON, [(Tag.ENCRYPT_METHOD, "0"), (Tag.HEART_BT_INT, heartbeat)])
            self.logged_on.set()
            if seq > expected:
                self.request_resend(expected)
            else:
                self.store.set_numbers(target=seq + 1)

    def _dispatch(self, kind: str, msg: FixMessage) -> None:
        if kind == MsgType.HEARTBEAT:
            test_id = text(msg, Tag.TEST_REQ_ID)
            if test_id is not None:
                with self._answers:
                    self._answered.add(test_id)
                    self._answers.notify_all()
        elif kind == MsgType.TEST_REQUEST:
            self.send(MsgType.HEARTBEAT, [(Tag.TEST_REQ_ID, required(msg, Tag.TEST_REQ_ID))])
        elif kind == MsgType.RESEND_REQUEST:
            self._resend(msg)
        elif kind == MsgType.SEQUENCE_RESET:  # gap fill: past its own number, never back
            self.store.set_numbers(target=_raised(msg, self.store.next_target))
        elif kind == MsgType.REJECT:
            log.warning("FIX %s rejected our message: %s", self.target, text(msg, Tag.TEXT))
        elif kind == MsgType.LOGOUT:
            self.logout_reason = text(msg, Tag.TEXT) or "logged out"
            if not self._logging_out:
                self.send(MsgType.LOGOUT, [])
            with self._lock:
                if self._sock is not None:
                    shut(self._sock)
        elif kind == MsgType.LOGON:
            self._end("a second Logon on a logged-on session")
        else:
            self.on_app(msg)

    def _tick(self) -> None:
        """Heartbeats: one after a silent interval of ours, a TestRequest after one of theirs,
        and the connection closes after two."""
        if not self.logged_on.is_set():
            return
        now = time.monotonic()
        if now - self._last_in > 2 * self.heartbeat:
            self._end(f"no message for {2 * self.heartbeat} s")
            return
        if now - self._last_in > 1.2 * self.heartbeat and not self._probing:
            self._probing = True
            self.send(MsgType.TEST_REQUEST, [(Tag.TEST_REQ_ID, f"probe-{int(now)}")])
        if now - self._last_out >= self.heartbeat:
            self.send(MsgType.HEARTBEAT, [])


def _raised(msg: FixMessage, expected: int) -> int:
    """The NewSeqNo (36) of a SequenceReset, refused (Reject, value incorrect) when it would
    take the expected number back: messages seen already would count again."""
    new_seq = number(msg, Tag.NEW_SEQ_NO, int)
    if new_seq < expected:
        raise FieldProblem(
            f"SequenceReset cannot lower the expected MsgSeqNum {expected} to {new_seq}",
            VALUE_INCORRECT,
            Tag.NEW_SEQ_NO,
        )
    return new_seq


def _next(parser: FixParser, session: Session) -> FixMessage | None:
    """The next complete message, or None; bytes that cannot be parsed are dropped with a
    Reject saying so (they carry no sequence number to refer to)."""
    try:
        return parser.get_message()
    except (ParsingError, ValueError) as exc:
        parser.reset()
        session.reject(0, None, FieldProblem(f"unparseable bytes: {exc!r}"))
        return None


def shut(sock: socket.socket) -> None:
    """Close ``sock`` so that a thread blocked reading it wakes up."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
