"""FIX 4.4 vocabulary: the tags and message types QTIS speaks, how a message is framed, and the
checks every incoming message passes before its session acts on it (checksum, body length,
required header fields). A failed check names the tag and the problem, for the Reject.

A field may hold any bytes: values are read as UTF-8 when they are, else as Latin-1 (which
maps every byte), with NUL replaced - so no value fails to decode, and none stops a journal
write (Postgres refuses NUL in text and jsonb)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from simplefix import FixMessage

BEGIN_STRING = "FIX.4.4"


class Tag(IntEnum):
    ACCOUNT = 1
    AVG_PX = 6
    BEGIN_SEQ_NO = 7
    BEGIN_STRING = 8
    BODY_LENGTH = 9
    CHECKSUM = 10
    CL_ORD_ID = 11
    COMMISSION = 12
    COMM_TYPE = 13
    CUM_QTY = 14
    END_SEQ_NO = 16
    EXEC_ID = 17
    LAST_PX = 31
    LAST_QTY = 32
    MSG_SEQ_NUM = 34
    MSG_TYPE = 35
    NEW_SEQ_NO = 36
    ORDER_ID = 37
    ORDER_QTY = 38
    ORD_STATUS = 39
    ORD_TYPE = 40
    ORIG_CL_ORD_ID = 41
    POSS_DUP_FLAG = 43
    PRICE = 44
    REF_SEQ_NUM = 45
    SENDER_COMP_ID = 49
    SENDING_TIME = 52
    SIDE = 54
    SYMBOL = 55
    TARGET_COMP_ID = 56
    TEXT = 58
    TIME_IN_FORCE = 59
    TRANSACT_TIME = 60
    ENCRYPT_METHOD = 98
    STOP_PX = 99
    CXL_REJ_REASON = 102
    ORD_REJ_REASON = 103
    HEART_BT_INT = 108
    TEST_REQ_ID = 112
    ORIG_SENDING_TIME = 122
    GAP_FILL_FLAG = 123
    EXEC_TYPE = 150
    LEAVES_QTY = 151
    REF_TAG_ID = 371
    REF_MSG_TYPE = 372
    SESSION_REJECT_REASON = 373
    CXL_REJ_RESPONSE_TO = 434
    # user-defined (5000-9999): the price a fill referenced before spread and slippage (the
    # open, limit or stop), so the engine can account slippage as it does with the simulator
    REFERENCE_PX = 9001


class MsgType(StrEnum):
    HEARTBEAT = "0"
    TEST_REQUEST = "1"
    RESEND_REQUEST = "2"
    REJECT = "3"
    SEQUENCE_RESET = "4"
    LOGOUT = "5"
    LOGON = "A"
    EXECUTION_REPORT = "8"
    ORDER_CANCEL_REJECT = "9"
    NEW_ORDER_SINGLE = "D"
    ORDER_CANCEL_REQUEST = "F"
    ORDER_STATUS_REQUEST = "H"


ADMIN = frozenset(
    {
        MsgType.HEARTBEAT,
        MsgType.TEST_REQUEST,
        MsgType.RESEND_REQUEST,
        MsgType.REJECT,
        MsgType.SEQUENCE_RESET,
        MsgType.LOGOUT,
        MsgType.LOGON,
    }
)
HEADER = (
    Tag.BEGIN_STRING,
    Tag.BODY_LENGTH,
    Tag.MSG_TYPE,
    Tag.SENDER_COMP_ID,
    Tag.TARGET_COMP_ID,
    Tag.MSG_SEQ_NUM,
    Tag.SENDING_TIME,
)

# SessionRejectReason (373)
REQUIRED_TAG_MISSING = 1
VALUE_INCORRECT = 5
INCORRECT_FORMAT = 6
COMP_ID_PROBLEM = 9
OTHER = 99

Fields = list[tuple[int, object]]  # None or empty values are left out when sent


class FieldProblem(Exception):
    """A message the session cannot take: a required tag is missing, a value is malformed, the
    frame is corrupt. Answered with a session Reject (35=3) carrying the reason."""

    def __init__(self, text: str, reason: int = OTHER, tag: int | None = None) -> None:
        super().__init__(text)
        self.reason, self.tag = reason, tag


class Garbled(FieldProblem):
    """A frame that is not what was sent (checksum, body length): none of its fields can be
    trusted, its MsgSeqNum included, so it does not count as received - the message is asked
    for again once the gap shows (FIX: ignore it, do not increment the expected number)."""


def name(tag: int) -> str:
    return f"{tag} ({Tag(tag).name})" if tag in Tag._value2member_map_ else str(tag)


def decoded(value: bytes) -> str:
    """Any bytes as text: UTF-8 when they are, else Latin-1; NUL becomes U+FFFD."""
    try:
        out = value.decode()
    except UnicodeDecodeError:
        out = value.decode("latin-1")
    return out.replace("\x00", "\ufffd")


def text(msg: FixMessage, tag: int) -> str | None:
    value = msg.get(tag)
    return None if value is None else decoded(value)


def required(msg: FixMessage, tag: int) -> str:
    value = text(msg, tag)
    if value is None:
        raise FieldProblem(f"required tag {name(tag)} missing", REQUIRED_TAG_MISSING, tag)
    return value


def number(msg: FixMessage, tag: int, kind: type = float, optional: bool = False):
    """The value of ``tag`` as ``kind`` (None when ``optional`` and absent)."""
    value = text(msg, tag) if optional else required(msg, tag)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise FieldProblem(
            f"tag {name(tag)} must be a {kind.__name__}, got {value!r}", INCORRECT_FORMAT, tag
        ) from None


def fix_time(ts: datetime) -> str:
    """UTCTimestamp with milliseconds, as FIX 4.4 writes it."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y%m%d-%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def parse_time(msg: FixMessage, tag: int) -> datetime:
    value = required(msg, tag)
    try:
        layout = "%Y%m%d-%H:%M:%S.%f" if "." in value else "%Y%m%d-%H:%M:%S"
        return datetime.strptime(value, layout).replace(tzinfo=UTC)
    except ValueError:
        raise FieldProblem(
            f"tag {name(tag)} is not a UTCTimestamp: {value!r}", INCORRECT_FORMAT, tag
        ) from None


def build(
    kind: str,
    sender: str,
    target: str,
    seq: int,
    sent: str,
    fields: Iterable[tuple[int, str]],
    original: str | None = None,
) -> FixMessage:
    """A message with its standard header; ``original`` (its first SendingTime) marks a resend
    (PossDupFlag=Y)."""
    msg = FixMessage()
    msg.append_pair(Tag.BEGIN_STRING, BEGIN_STRING)
    msg.append_pair(Tag.MSG_TYPE, kind)
    msg.append_pair(Tag.SENDER_COMP_ID, sender)
    msg.append_pair(Tag.TARGET_COMP_ID, target)
    msg.append_pair(Tag.MSG_SEQ_NUM, seq)
    if original is not None:
        msg.append_pair(Tag.POSS_DUP_FLAG, "Y")
    msg.append_pair(Tag.SENDING_TIME, sent)
    if original is not None:
        msg.append_pair(Tag.ORIG_SENDING_TIME, original)
    for tag, value in fields:
        msg.append_pair(tag, value)
    return msg


def _frame_number(msg: FixMessage, tag: int) -> int:
    try:
        return number(msg, tag, int)
    except FieldProblem as problem:
        raise Garbled(str(problem), problem.reason, problem.tag) from None


def check(msg: FixMessage, sender: str, target: str) -> int:
    """The message's MsgSeqNum once its frame and header are sound (``sender`` is the CompID it
    must come from); a FieldProblem says what is wrong."""
    pairs = msg.pairs
    wire = [t + b"=" + v + b"\x01" for t, v in pairs]
    declared = _frame_number(msg, Tag.CHECKSUM)
    actual = sum(b"".join(wire[:-1])) % 256
    if pairs[-1][0] != b"10" or actual != declared:
        raise Garbled(f"bad checksum: 10={declared:03d}, the bytes sum to {actual:03d}")
    if len(pairs) < 3 or pairs[1][0] != b"9":
        raise Garbled("BodyLength (9) must be the second field", REQUIRED_TAG_MISSING, 9)
    length = len(b"".join(wire[2:-1]))
    if (declared := _frame_number(msg, Tag.BODY_LENGTH)) != length:
        raise Garbled(
            f"bad BodyLength: 9={declared}, the body has {length} bytes",
            VALUE_INCORRECT,
            Tag.BODY_LENGTH,
        )
    for tag in HEADER:
        required(msg, tag)
    if text(msg, Tag.BEGIN_STRING) != BEGIN_STRING:
        raise FieldProblem(f"BeginString must be {BEGIN_STRING}", VALUE_INCORRECT, 8)
    for tag, expected in ((Tag.SENDER_COMP_ID, sender), (Tag.TARGET_COMP_ID, target)):
        if text(msg, tag) != expected:
            raise FieldProblem(
                f"CompID problem: {name(tag)} is {text(msg, tag)!r}, expected {expected!r}",
                COMP_ID_PROBLEM,
                tag,
            )
    return number(msg, Tag.MSG_SEQ_NUM, int)
