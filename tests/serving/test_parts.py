"""The service's parts on their own: the rate limits, role checks and audit of the auth
middleware, the body guard and the ``.npy`` body reader (in front of a small ASGI app, through
httpx), the token and exposure rules, the adaptive batcher merging concurrent requests, the request
deadline, and the client's retry policy (against a small HTTP server that always answers 503)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import io
import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from bentoml._internal.server.http import traffic
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serving.auth import BearerAuth, OpenExposure, RateLimiter, check_exposure, required_role
from serving.batching import AdaptiveBatcher
from serving.binary import NPY, read_npy
from serving.client import ServingClient, ServingError
from serving.deadline import install
from serving.errors import RequestError
from serving.guards import BodyGuard
from serving.model_set import settle
from serving.settings import ServingSettings
from tests.support.service import npy

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
    """Takes 20 ms a call whatever the batch: the case batching exists for. Reads the last
    ``window`` bars, like a served model."""

    window = 4

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def predict(self, windows: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append(len(windows))
        if windows.shape[1] != self.window:
            raise ValueError(f"{windows.shape[1]} bars, expected {self.window}")
        if (windows < 0).any():
            raise ValueError("a negative value")
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


def test_a_cross_sectional_model_is_called_once_per_request():
    """Its forecasts for a request depend on the request's other windows (the cross-section),
    so concurrent requests are never merged into one call."""
    model = SlowModel()
    model.cross_sectional = True
    batcher = AdaptiveBatcher(max_windows=64)
    inputs = [np.full((1 + i % 3, 4, 2), float(i), dtype=np.float32) for i in range(6)]

    async def run() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.score(model, x) for x in inputs))

    outputs = asyncio.run(run())
    for x, y in zip(inputs, outputs, strict=True):
        np.testing.assert_array_equal(y, x[:, -1, :2] * 2)
    assert model.calls == [len(x) for x in inputs]


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


def test_requests_with_different_bar_counts_are_all_answered():
    """Two clients sending 4- and 9-bar windows at once: each input is trimmed to the model's
    window before the batch is merged, so every request gets its own forecasts."""
    model = SlowModel()
    batcher = AdaptiveBatcher(max_windows=64)
    inputs = [np.full((2, 4 + 5 * (i % 2), 2), float(i), dtype=np.float32) for i in range(10)]

    async def run() -> list[np.ndarray]:
        calls = asyncio.gather(*(batcher.score(model, x) for x in inputs))
        return await asyncio.wait_for(calls, timeout=10)

    outputs = asyncio.run(run())
    for x, y in zip(inputs, outputs, strict=True):
        np.testing.assert_array_equal(y, x[:, -1, :2] * 2)
    assert len(model.calls) < len(inputs)  # still merged


def test_a_failing_request_fails_alone_and_every_request_is_answered():
    model = SlowModel()
    batcher = AdaptiveBatcher(max_windows=64)
    inputs = [np.full((1, 4, 2), 1.0 - 2 * (i == 3), dtype=np.float32) for i in range(8)]

    async def run() -> list:
        calls = asyncio.gather(*(batcher.score(model, x) for x in inputs), return_exceptions=True)
        return await asyncio.wait_for(calls, timeout=10)

    outputs = asyncio.run(run())
    assert isinstance(outputs[3], ValueError) and "negative" in str(outputs[3])
    for i, y in enumerate(outputs):
        if i != 3:
            np.testing.assert_array_equal(y, np.full((1, 2), 2.0))


def test_the_batch_queue_is_bounded():
    """Past ``max_queued`` waiting windows a request is a 429 at once, not a long wait."""
    model = SlowModel()
    batcher = AdaptiveBatcher(max_windows=64, max_queued=4)
    windows = np.ones((2, 4, 2), dtype=np.float32)

    async def run() -> list:
        calls = (batcher.score(model, windows) for _ in range(3))
        return await asyncio.gather(*calls, return_exceptions=True)

    first, second, third = asyncio.run(run())
    assert first.shape == second.shape == (2, 2)
    assert isinstance(third, RequestError) and third.status == 429
    assert "QTIS_SERVE_MAX_QUEUED_WINDOWS" in str(third)


def test_a_short_token_from_the_environment_is_refused(monkeypatch):
    """The same floor as a token file's tokens."""
    monkeypatch.setenv("QTIS_API_TOKEN", "short-token")
    with pytest.raises(ValueError, match=r"QTIS_API_TOKEN has 11 characters; .* at least 16"):
        ServingSettings()


def test_an_open_api_is_refused_off_loopback_and_warned_about(caplog):
    with pytest.raises(OpenExposure, match="QTIS_API_OPEN=1"):
        check_exposure(["127.0.0.1", "0.0.0.0"], ServingSettings())
    with pytest.raises(OpenExposure, match="on ::"):
        check_exposure(["::"], ServingSettings())
    caplog.clear()
    check_exposure(["127.0.0.1", "::1"], ServingSettings())  # loopback: served, with a warning
    check_exposure(["0.0.0.0"], ServingSettings(api_open=True))  # asked for explicitly
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "the API is open" in caplog.records[1].getMessage()
    caplog.clear()
    check_exposure(["0.0.0.0"], ServingSettings(api_token=TOKEN))
    assert not caplog.records


def call(app, requests: list[tuple[str, str, dict]], client=("127.0.0.1", 1)) -> list:
    """``(method, path, headers)`` requests sent in order to ``app`` from ``client``."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [await c.request(m, p, headers=h) for m, p, h in requests]

    return asyncio.run(run())


def test_unauthenticated_callers_are_limited_per_address(tmp_path):
    settings = ServingSettings(
        api_token=TOKEN, api_anonymous_rate_limit=0.01, api_anonymous_rate_burst=2
    )
    app = BearerAuth(echo, settings, tmp_path)
    anonymous = [("POST", "/admin/reload", {})] * 4
    a = call(app, anonymous, client=("10.0.0.1", 1))
    assert [r.status_code for r in a] == [401, 401, 429, 429]
    assert a[2].headers["retry-after"] and a[2].json()["error"] == "rate limit exceeded"
    wrong = [("POST", "/predict", {"authorization": "Bearer not-a-known-token"})]
    assert call(app, wrong, client=("10.0.0.1", 2))[0].status_code == 429  # same address
    assert call(app, anonymous[:1], client=("10.0.0.2", 1))[0].status_code == 401  # another
    known = [("POST", "/predict", {"authorization": f"Bearer {TOKEN}"})]
    assert call(app, known, client=("10.0.0.1", 3))[0].status_code == 200
    app.audit.flush()  # the two 401s on /admin were audited; the 429s did no work at all
    lines = app.audit.path.read_text().splitlines()
    assert len(lines) == 3 and all('"status": 401' in line for line in lines)


def test_audit_lines_carry_the_client_and_are_written_off_the_event_loop(tmp_path):
    """The audit log is a FIFO nobody reads yet: writing it on the event loop would block the
    request for ever; the writer thread waits instead, and the line arrives once read."""
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    app = BearerAuth(echo, ServingSettings(api_token=TOKEN, serve_audit_log=fifo), tmp_path)
    admin = [("POST", "/admin/reload", {"authorization": f"Bearer {TOKEN}"})]
    answers: list = []
    caller = threading.Thread(target=lambda: answers.extend(call(app, admin, ("10.9.8.7", 5))))
    caller.start()
    caller.join(timeout=10)
    answered = not caller.is_alive()
    with fifo.open() as reader:  # unblocks the writer (and, before, the event loop)
        line = json.loads(reader.readline())
    caller.join()
    assert answered, "the request waited for the audit log to be written"
    assert answers[0].status_code == 200
    assert (line["client"], line["path"], line["status"]) == ("10.9.8.7", "/admin/reload", 200)


async def echo_body(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_only_json_bodies_within_the_cap_reach_the_service():
    app = BodyGuard(echo_body, max_bytes=1024)

    async def post(content, headers: dict) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post("/predict", content=content, headers=headers)

    def status(content, content_type: str | None) -> int:
        headers = {"content-type": content_type} if content_type else {}
        return asyncio.run(post(content, headers)).status_code

    assert status(b"{}", "multipart/form-data") == 415  # no boundary: BentoML's 500
    assert status(b"{}", "text/plain") == 415
    assert status(b"{}", None) == 415  # a body must say what it is
    assert status(b"", None) == 200  # no body: nothing to parse
    assert status(b"x" * 1025, "application/json") == 413  # Content-Length, unread

    async def stream():  # no Content-Length: cut off once past the cap
        for _ in range(10):
            yield b"x" * 200

    assert status(stream(), "application/json") == 413
    echoed = asyncio.run(post(b'{"a": 1}', {"content-type": "application/json; charset=utf-8"}))
    assert echoed.status_code == 200 and echoed.content == b'{"a": 1}'
    assert status(b"\x93NUMPY", NPY) == 200  # an array body, for POST /predict only
    assert asyncio.run(post(b"\x93NUMPY", {"content-type": NPY})).content == b"\x93NUMPY"


def test_npy_bodies_are_refused_elsewhere():
    async def post(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=BodyGuard(echo_body, max_bytes=1024))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post(path, content=b"\x93NUMPY", headers={"content-type": NPY})

    answer = asyncio.run(post("/explain"))
    assert answer.status_code == 415 and NPY in answer.json()["error"]


@given(
    arrays(
        st.sampled_from([np.float32, np.float64, np.int16]),
        st.tuples(*[st.integers(1, 4)] * 3),
        elements=st.integers(-1000, 1000),
    )
)
def test_npy_bodies_are_read_as_they_were_saved(array):
    body = npy(array)
    np.testing.assert_array_equal(read_npy(body), array)
    # the header again (parsed once per distinct header), after another shape's
    read_npy(npy(np.zeros((1, 1, 1), np.float32)))
    again = read_npy(body)
    np.testing.assert_array_equal(again, array)
    assert again.dtype == array.dtype


def _claiming(shape: tuple[int, ...]) -> bytes:
    """A .npy header that claims ``shape`` of float64, followed by 64 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + bytes(64)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"request": {}}', 400, "magic"),
        (npy(np.array([[[1, "a"]]], dtype=object), allow_pickle=True), 400, "allow_pickle"),
        (npy(np.array([[["a"]]])), 400, "dtype <U1"),
        (npy(np.ones((1, 2, 3)))[:-8], 400, "expected"),  # truncated
        (npy(np.ones((1, 2, 3))) + b"\0", 400, "1 bytes after"),
        (npy(np.ones((2, 3))), 422, "(windows, bars, features)"),
        (npy(np.ones((0, 2, 3))), 422, "non-empty"),
        (_claiming((10**9, 60, 56)), 400, "expected"),  # allocates nothing
    ],
    ids=["not npy", "pickled", "strings", "truncated", "trailing", "2-d", "empty", "huge shape"],
)
def test_bad_npy_bodies_are_a_4xx_naming_the_problem(body, status, needle):
    with pytest.raises(RequestError) as raised:
        read_npy(body)
    assert raised.value.status == status and needle in str(raised.value)
    assert raised.value.field == ("body" if status == 400 else "windows")


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


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_frees_a_replaced_models_cycles_and_freezes_the_rest():
    try:
        kept = Cycle()
        ref = weakref.ref(kept)
        gc.freeze()  # as settle left the models loaded at start
        del kept
        assert settle({"champion": "1"}, {"champion": "1"}) == {"champion": "1"}
        assert ref() is not None  # nothing changed: nothing collected, the freeze holds
        settle({"champion": "2"}, {"champion": "1"})
        assert ref() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


REQUEST = contextvars.ContextVar("request")


def test_the_request_deadline_lets_go_of_an_answered_request_and_504s_a_late_one():
    install()  # as serving.service does
    deadline = traffic.TimeoutMiddleware  # what BentoML builds the service's stack from

    async def slow(scope, receive, send) -> None:
        await asyncio.sleep(1)
        await echo(scope, receive, send)

    async def run(app, timeout: float) -> tuple[httpx.Response, bool]:
        REQUEST.set(Cycle())  # what a request's context holds (its trace span, ...)
        request = weakref.ref(REQUEST.get())
        transport = httpx.ASGITransport(app=deadline(app, timeout=timeout))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answer = await c.post("/predict")
        REQUEST.set(None)
        for _ in range(3):  # the loop's turns that drop cancelled timers
            await asyncio.sleep(0)
        gc.collect()
        return answer, request() is not None

    answer, kept = asyncio.run(run(echo, timeout=3600))
    assert answer.status_code == 200 and answer.content == b"ok"
    assert not kept, "an answered request's context is kept until its deadline"
    late, _ = asyncio.run(run(slow, timeout=0.05))
    assert late.status_code == 504 and "0.05 s" in late.json()["error"]

    async def deaf(scope, receive, send) -> None:  # swallows the deadline's cancellation
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            return

    async def stubborn(scope, receive, send) -> None:  # ... and answers anyway
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            await echo(scope, receive, send)

    swallowed, _ = asyncio.run(run(deaf, timeout=0.05))
    assert swallowed.status_code == 504, swallowed.text  # not the server's bare 500
    answered, _ = asyncio.run(run(stubborn, timeout=0.05))
    assert answered.status_code == 200 and answered.content == b"ok"  # its answer, unchanged
