"""The admin audit log: one JSON line per admin call (who, from where, what, the outcome),
appended by a background thread so a slow disk never stalls the event loop that answers
requests. The queue is bounded; a line that finds it full goes to the error log instead."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("qtis.serving")

_STOP = object()


class AuditLog:
    def __init__(self, path: Path, capacity: int = 10_000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="qtis-audit", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, **entry: object) -> None:
        """Queue one line; never blocks."""
        line = json.dumps({"at": datetime.now(UTC).isoformat(), **entry}, default=str)
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            log.error("audit queue full, line not written to %s: %s", self.path, line)

    def _run(self) -> None:
        while True:
            lines = [self._queue.get()]
            while not self._queue.empty() and len(lines) < 1000:
                lines.append(self._queue.get_nowait())
            done = _STOP in lines
            try:
                with self.path.open("a") as handle:
                    handle.writelines(f"{line}\n" for line in lines if line is not _STOP)
            except OSError as exc:
                log.error("audit log %s not written (%s): %s", self.path, exc, lines)
            for _ in lines:
                self._queue.task_done()
            if done:
                return

    def flush(self) -> None:
        """Wait until every queued line is on disk."""
        self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
