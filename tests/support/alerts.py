"""For alert tests: a real local webhook that records each JSON body it receives, answers with a
chosen status, and can hold its answers back until the test (or an engine observer) releases
them - a slow Slack, without a clock; and the keys an alert log holds."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

HOLD_LIMIT = 60.0  # seconds a held request waits at most: a failing test ends instead of hanging


def logged_keys(path: Path) -> list[str]:
    """The alert keys of a log file, in order."""
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


class Webhook:
    def __init__(self, status: int = 204, path: str = "/hook") -> None:
        self.status, self.path = status, path
        self.received: list[dict] = []  # bodies, in the order they arrived
        self.answered: list[dict] = []  # bodies whose answer was sent
        self.arrived = threading.Event()  # set by the first request
        self._released = threading.Event()
        self._released.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{self.path}"

    def hold(self) -> None:
        """Keep every answer back until :meth:`release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append(body)
                hook.arrived.set()
                hook._released.wait(HOLD_LIMIT)
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                hook.answered.append(body)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
