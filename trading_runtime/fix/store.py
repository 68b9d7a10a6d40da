"""A session's memory across connections and restarts: the next sequence number each way and
every application message it sent, which a ResendRequest may ask for again. Files, flushed on
every change (they survive a process restart; there is no fsync, so not a power cut).

One process per session: the directory is locked (``flock``) while a store is open, so a second
process with the same CompIDs fails at once, naming the holder, instead of sharing the numbers
and knocking the first off the venue. The lock goes with the process, however it ends.

The incoming number saved is not always the next one expected: a message can be *held* until
its events are journaled (``receive(seq, held=True)``, then ``release``), and the number saved
is the first held one. A process that dies before its journal write therefore asks for that
message again after the restart, and loses nothing."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.errors import QtisError
from trading_runtime.fix.protocol import Fields


class SessionInUse(QtisError):
    """Another process has this FIX session (its CompIDs) open."""


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    kind: str
    sent: str  # its first SendingTime: OrigSendingTime (122) when it is resent
    fields: Fields


class FileStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lockfile = _lock(directory)
        self._numbers = directory / "seqnums.json"
        self._messages = directory / "messages.jsonl"
        numbers = json.loads(self._numbers.read_text()) if self._numbers.exists() else {}
        self.next_sender: int = numbers.get("sender", 1)
        self.next_target: int = numbers.get("target", 1)
        self._held: set[int] = set()  # received, their events not journaled yet
        self._first_held: int | None = None  # min(_held), kept: the set can be long
        self._log = self._messages.open("a")
        # a session's reader and its senders both move the numbers: one writer at a time, or
        # one's rename finds the other's temporary file already gone
        self._lock = threading.Lock()

    @property
    def saved_target(self) -> int:
        """The incoming number a restart starts from: the first held message, if any."""
        return self.next_target if self._first_held is None else self._first_held

    def set_numbers(self, sender: int | None = None, target: int | None = None) -> None:
        with self._lock:
            self.next_sender = sender or self.next_sender
            self.next_target = target or self.next_target
            self._save()

    def receive(self, seq: int, held: bool) -> None:
        """Message ``seq`` arrived in sequence; ``held``: saved as received only once released."""
        with self._lock:
            self.next_target = seq + 1
            if held:
                self._held.add(seq)
                first = self._first_held
                self._first_held = seq if first is None else min(seq, first)
            self._save()

    def release(self, seqs: Iterable[int]) -> None:
        """The events of messages ``seqs`` are journaled: they count as received."""
        with self._lock:
            self._held.difference_update(seqs)
            if self._first_held not in self._held:  # released: the next one is first
                self._first_held = min(self._held, default=None)
            self._save()

    def _save(self) -> None:
        numbers = {"sender": self.next_sender, "target": self.saved_target}
        temporary = self._numbers.with_suffix(".tmp")
        temporary.write_text(json.dumps(numbers))
        os.replace(temporary, self._numbers)

    def save(self, message: Stored) -> None:
        line = {"seq": message.seq, "kind": message.kind, "sent": message.sent}
        fields = [[t, {"latin1": v.decode("latin-1")} if isinstance(v, bytes) else v]
                  for t, v in message.fields]  # fmt: skip
        with self._lock:
            self._log.write(json.dumps(line | {"fields": fields}) + "\n")
            self._log.flush()

    def sent(self, begin: int, end: int) -> dict[int, Stored]:
        """The application messages sent with sequence numbers ``begin`` to ``end`` (read line
        by line: the file grows with the session)."""
        found = {}
        with self._messages.open() as lines:
            for line in lines:
                data = json.loads(line)
                if begin <= data["seq"] <= end:
                    fields = [(int(t), v["latin1"].encode("latin-1") if isinstance(v, dict) else v)
                              for t, v in data["fields"]]  # fmt: skip
                    found[data["seq"]] = Stored(data["seq"], data["kind"], data["sent"], fields)
        return found

    def close(self) -> None:
        self._log.close()
        self._lockfile.close()  # the lock goes with it


def _lock(directory: Path):
    """The open, exclusively locked ``directory/lock``, which names its holder; SessionInUse
    when another process holds it."""
    handle = (directory / "lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SessionInUse(
            f"the FIX session in {directory} is in use by {holder}: one process per session"
            " - stop that one, or give this one other CompIDs (QTIS_FIX_SENDER_COMP_ID)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} ({' '.join(sys.argv[:4])})\n")
    handle.flush()
    return handle
