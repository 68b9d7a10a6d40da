"""``/metrics`` and ``/healthz`` of a live trading service on one local port: Prometheus scrapes
the first, a supervisor (systemd's watchdog script, a container's health check, a load
balancer) asks the second whether the service is trading.

``/healthz`` answers 200 while the service is healthy and 503 otherwise, with a JSON body that
says why (the feed is stale, the broker is disconnected, trading is halted), so that an
operator reading it knows what to look at."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from core.net import is_loopback

Health = Callable[[], dict[str, Any]]  # {"healthy": bool, ...what it is based on}


class HealthServer:
    """Serves ``registry`` on /metrics and ``health()`` on /healthz from a daemon thread.
    Loopback only unless ``open_`` is set: the answers name the stream and its accounts."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Health,
        host: str = "127.0.0.1",
        port: int = 0,
        open_: bool = False,
    ) -> None:
        if not is_loopback(host) and not open_:
            raise ValueError(
                f"/metrics and /healthz on {host} would be reachable from other machines:"
                " serve them on 127.0.0.1, or open them explicitly (--metrics-open)"
            )
        handler = _handler(registry, health)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="qtis-health", daemon=True
        )

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                state = health()
                body = json.dumps(state, default=str).encode()
                self._answer(200 if state.get("healthy") else 503, "application/json", body)
            else:
                self._answer(404, "text/plain", b"not found: /metrics or /healthz\n")

        def _answer(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a scrape every few seconds is not news."""

    return Handler
