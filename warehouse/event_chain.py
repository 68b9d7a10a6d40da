"""The hash chain of ``runtime.events``: each event's ``hash`` is sha256 over the hash of the
event before it in its stream (``prev_hash``; before a stream's first event, sha256 of the
stream's name), its type, its key and its payload as canonical JSON. Editing, removing or
reordering an event breaks the chain at that event, or at the one after it, unless every later
hash is rewritten too: `qtis trade replay` prints the head hash so that it can be recorded
elsewhere. The storage time (``ts``) and ``seq`` are the database's and are not hashed; the
order is, through ``prev_hash``.

The writer (``trading_runtime.journal``) stores the canonical text it hashed, so a reader who
loads the jsonb back gets the same text: jsonb rewrites only numbers that JSON would print
differently after the round trip (``-0.0`` and floats of 1e16 and more, which come back as
``0.0`` and integers), and :func:`canonical` makes that rewrite itself before hashing.
Here (not in the runtime) because migration 0007 chains the events written before it.

The canonical text is ``json.dumps``'s, byte for byte (old chains must verify). orjson writes
the same text ten times faster for the usual payload; where the two could differ (a float it
prints another way, NaN, non-ASCII text, a type json would ``str``), the text falls back to
``json.dumps``, which a property test checks.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson

GENESIS = b"qtis.runtime.events\0"


def genesis(stream: str) -> bytes:
    """What a stream's first event is chained to: moving an event to another stream breaks
    both chains."""
    return hashlib.sha256(GENESIS + stream.encode()).digest()


_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_EXPONENT = re.compile(r"e[-+]?\d")  # orjson's 1e16 and 1e-7 (json: 1e+16, 1e-07)


def _text(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is json.dumps's to write (default=str)")


def _fast_text(payload: Any) -> str | None:
    """orjson's text where it equals ``_text``'s, else None. ``null`` may be NaN (json writes
    ``NaN``, which jsonb refuses: that write must fail as it always did); ``-0.0`` is
    rewritten by jsonb; json escapes all but printable ASCII."""
    try:
        text = orjson.dumps(payload, default=_refuse, option=_ORJSON).decode()
    except TypeError:  # a type orjson would write its own way, or an int beyond 64 bits
        return None
    if "null" in text or "-0.0" in text or not text.isascii() or "\x7f" in text:  # json: \u007f
        return None
    if "0.0000" in text or _EXPONENT.search(text):  # 0.00001: orjson's, json's is 1e-05
        return None
    return text


def _as_jsonb(value: Any) -> Any:
    """``value`` with the numbers jsonb would rewrite rewritten the same way."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0  # -0.0
        if abs(value) >= 1e16 and value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _as_jsonb(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_jsonb(v) for v in value]
    return value


def canonical(payload: dict[str, Any]) -> str:
    """The JSON text that is stored and hashed: keys sorted, no spaces, numbers as they read
    back from jsonb. Only a text that could hold a rewritten number (an exponent or ``-0.0``)
    pays for the walk through the payload."""
    text = _fast_text(payload)
    if text is not None:
        return text
    text = _text(payload)
    if "e+" in text or "-0.0" in text:
        text = _text(_as_jsonb(payload))
    return text


def link(prev: bytes, type_: str, key: str | None, text: str) -> bytes:
    """An event's hash. NUL separates the parts (Postgres text cannot hold one); a key is
    marked so that no key and an empty key differ."""
    mark = b"" if key is None else b"\1" + key.encode()
    return hashlib.sha256(prev + type_.encode() + b"\0" + mark + b"\0" + text.encode()).digest()


class ChainCheck:
    """Walks a stream's rows in seq order (:meth:`add`) and keeps the first broken link."""

    def __init__(self, stream: str) -> None:
        self.head = genesis(stream)  # the hash the next event must follow
        self.events = 0
        self.last_seq: int | None = None
        self.broken: str | None = None

    def add(
        self, seq: int, type_: str, key: str | None, payload: Any, prev: bytes, digest: bytes
    ) -> bool:
        """Check one row; False once the chain is broken (here or before)."""
        if self.broken is not None:
            return False
        after = "the stream's start" if self.last_seq is None else f"seq {self.last_seq}"
        if prev != self.head:
            self.broken = (
                f"chain broken at seq {seq}: it was not written after {after} (an event between"
                " them was removed, or the rows were reordered or rewritten)"
            )
        elif link(prev, type_, key, canonical(payload)) != digest:
            self.broken = (
                f"chain broken at seq {seq} ({type_}): its contents are not what was written"
                " (edited after it was appended)"
            )
        else:
            self.head, self.events, self.last_seq = digest, self.events + 1, seq
        return self.broken is None
