"""A session's memory across connections and restarts: the next sequence number each way and
every application message it sent, which a ResendRequest may ask for again. Files, flushed on
every change (they survive a process restart; there is no fsync, so not a power cut)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from trading_runtime.fix.protocol import Fields


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    kind: str
    sent: str  # its first SendingTime: OrigSendingTime (122) when it is resent
    fields: Fields


class FileStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._numbers = directory / "seqnums.json"
        self._messages = directory / "messages.jsonl"
        numbers = json.loads(self._numbers.read_text()) if self._numbers.exists() else {}
        self.next_sender: int = numbers.get("sender", 1)
        self.next_target: int = numbers.get("target", 1)
        self._log = self._messages.open("a")
        # a session's reader and its senders both move the numbers: one writer at a time, or
        # one's rename finds the other's temporary file already gone
        self._lock = threading.Lock()

    def set_numbers(self, sender: int | None = None, target: int | None = None) -> None:
        with self._lock:
            self.next_sender = sender or self.next_sender
            self.next_target = target or self.next_target
            numbers = {"sender": self.next_sender, "target": self.next_target}
            temporary = self._numbers.with_suffix(".tmp")
            temporary.write_text(json.dumps(numbers))
            os.replace(temporary, self._numbers)

    def save(self, message: Stored) -> None:
        line = {"seq": message.seq, "kind": message.kind, "sent": message.sent}
        with self._lock:
            self._log.write(json.dumps(line | {"fields": message.fields}) + "\n")
            self._log.flush()

    def sent(self, begin: int, end: int) -> dict[int, Stored]:
        """The application messages sent with sequence numbers ``begin`` to ``end``."""
        found = {}
        for line in self._messages.read_text().splitlines():
            data = json.loads(line)
            if begin <= data["seq"] <= end:
                fields = [(int(t), v) for t, v in data["fields"]]
                found[data["seq"]] = Stored(data["seq"], data["kind"], data["sent"], fields)
        return found

    def close(self) -> None:
        self._log.close()
