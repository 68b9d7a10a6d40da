"""The service's parts on their own: the rate limit and role checks of the auth middleware (in
front of a small ASGI app, through httpx), the adaptive batcher merging concurrent requests, and
the client's retry policy (against a small HTTP server that always answers 503)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from serving.auth import BearerAuth, RateLimiter, required_role
from serving.batching import AdaptiveBatcher
from serving.client import ServingClient, ServingError
from serving.settings import ServingSettings

TOKEN = "a-token-of-sufficient-length"


async def echo(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    settings = ServingSettings(
        api_token=TOKEN, api_rate_limit=1.0, api_rate_burst=3, serve_audit_log=tmp_path / "a.log"
    )
    app = BearerAuth(echo, settings, tmp_path)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answers = [await c.post("/predict", headers=headers) for _ in range(5)]
            answers.append(await c.get("/livez"))  # open paths are not limited
            return answers

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 200]
    assert answers[3].headers["retry-after"] == "1"
    assert answers[3].json()["error"] == "rate limit exceeded"


def test_the_settings_passed_in_win_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("QTIS_HOME", str(tmp_path / "env-home"))
    monkeypatch.setenv("QTIS_API_TOKEN", "from-the-environment")
    app = BearerAuth(echo, ServingSettings(api_token=TOKEN), tmp_path / "given")
    assert app.audit.path == tmp_path / "given" / "logs" / "serving-audit.log"
    assert app.tokens.enabled

    async def call(token: str) -> int:
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return (await c.post("/predict", headers=headers)).status_code

    assert asyncio.run(call(TOKEN)) == 200
    assert asyncio.run(call("from-the-environment")) == 401


def test_bucket_refills_at_the_rate():
    limiter = RateLimiter(rate=50.0, burst=1)
    assert limiter.allow("k") == 0
    wait = limiter.allow("k")
    assert 0 < wait <= 0.02
    time.sleep(wait + 0.01)
    assert limiter.allow("k") == 0
    assert limiter.allow("other") == 0  # per token


@pytest.mark.parametrize(
    ("path", "role"),
    [("/livez", None), ("/metrics", None), ("/docs.json", None), ("/predict", "predict"),
     ("/model", "predict"), ("/admin/reload", "admin"), ("/anything", "predict")],
)  # fmt: skip
def test_route_roles(path, role):
    assert required_role(path) == role


class SlowModel:
    """Takes 20 ms a call whatever the batch: the case batching exists for."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def predict(self, windows: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append(len(windows))
        time.sleep(0.02)
        return windows[:, -1, :2] * 2


def test_batcher_merges_concurrent_requests_and_splits_answers():
    model = SlowModel()
    batcher = AdaptiveBatcher(max_windows=64)
    inputs = [np.full((1 + i % 3, 4, 2), float(i), dtype=np.float32) for i in range(24)]

    async def run() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.score(model, x) for x in inputs))

    outputs = asyncio.run(run())
    for x, y in zip(inputs, outputs, strict=True):
        np.testing.assert_array_equal(y, x[:, -1, :2] * 2)  # each caller gets its own rows
    assert sum(model.calls) == sum(len(x) for x in inputs)
    assert len(model.calls) < len(inputs) / 3  # merged
    assert max(model.calls) <= 64


def test_batcher_alone_scores_at_once_and_respects_the_cap():
    model = SlowModel()
    batcher = AdaptiveBatcher(max_windows=4)

    async def run():
        single = await batcher.score(model, np.ones((1, 4, 2), dtype=np.float32))
        many = await asyncio.gather(
            *(batcher.score(model, np.ones((3, 4, 2), dtype=np.float32)) for _ in range(4))
        )
        return single, many

    single, many = asyncio.run(run())
    assert single.shape == (1, 2) and model.calls[0] == 1
    assert all(m.shape == (3, 2) for m in many) and max(model.calls) <= 4


@pytest.fixture
def unavailable() -> Iterator[tuple[str, list[str]]]:
    """A server answering every request 503; yields its URL and the paths it was asked for."""
    asked: list[str] = []

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            asked.append(self.path)
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b'{"error": "busy"}'
            self.send_response(503)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_admin_calls_are_sent_once_and_reads_are_retried(unavailable):
    """A reload or a roll-back may have been applied when the answer was lost: never resent."""
    base, asked = unavailable
    with ServingClient(base, retries=3, backoff=0.001) as client:
        for call in (client.rollback, client.reload):
            with pytest.raises(ServingError, match="503"):
                call()
        with pytest.raises(ServingError, match="503"):
            client.info()
    assert asked == ["/admin/rollback", "/admin/reload", *["/model"] * 4]
