"""The real service, tried as an attacker or a clumsy operator would: started on every interface
without tokens, sent bodies of the wrong type or size, windows of different lengths at once, and
fuzzed by schemathesis from its own OpenAPI document. Never a 5xx, never a hang."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from serving.launch import service_command
from tests.support.cli import qtis
from tests.support.service import (
    free_port,
    running_service,
    server_errors,
    start,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.slow  # BentoML servers in subprocesses over a trained champion

PREDICT_TOKEN = "predict-token-for-hostile-01"
ADMIN_TOKEN = "admin-token-for-hostile-0002"
MAX_BODY = 256 * 1024
MAX_BARS = 40
FUZZ_EXAMPLES = 40


@pytest.fixture(scope="module")
def service(champion, tmp_path_factory):
    _, env, home = champion
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.yml"
    tokens.write_text(f"{PREDICT_TOKEN}: predict\n{ADMIN_TOKEN}: [admin]\n")
    settings_env = env | {
        "QTIS_API_TOKEN_FILE": str(tokens),
        "QTIS_SERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "QTIS_SERVE_MAX_BARS": str(MAX_BARS),
        "QTIS_SERVE_RELOAD_SECONDS": "0",
        # the fuzzer's unauthenticated probes must meet 401, not the address's rate limit
        "QTIS_API_RATE_BURST": "100000",
        "QTIS_API_ANONYMOUS_RATE_BURST": "100000",
    }
    with running_service(settings_env, home / "hostile.log") as base:
        yield base, home


ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def test_bodies_that_are_not_json_are_415_not_500(service):
    """Before: `multipart/form-data` without a boundary was a 500 on every POST route."""
    base, _ = service
    for path in ("/predict", "/explain", "/admin/reload", "/admin/rollback"):
        for content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            headers = ADMIN | {"content-type": content_type}
            answer = httpx.post(base + path, content=b"{}", headers=headers)
            assert answer.status_code == 415, (path, content_type, answer.text)
            assert answer.json()["field"] == "content-type"
    assert server_errors(base) == []


def features(base: str) -> int:
    return len(httpx.get(base + "/model", headers=ADMIN).json()["champion"]["features"])


def test_oversized_bodies_and_windows_are_413(service):
    base, _ = service
    n = features(base)
    big = b'{"request": {"windows": [[[' + b"0.5, " * (MAX_BODY // 5) + b"0.5]]]}}"
    answer = httpx.post(
        base + "/predict", content=big, headers=ADMIN | {"content-type": "application/json"}
    )
    assert answer.status_code == 413 and "QTIS_SERVE_MAX_BODY_BYTES" in answer.json()["error"]
    long = {"request": {"windows": [[[0.5] * n] * (MAX_BARS + 1)]}}
    answer = httpx.post(base + "/predict", json=long, headers=ADMIN)
    assert answer.status_code == 413 and "QTIS_SERVE_MAX_BARS" in answer.json()["error"]
    answer = httpx.post(
        base + "/explain",
        json={"request": {"window": long["request"]["windows"][0]}},
        headers=ADMIN,
    )
    assert answer.status_code == 413, answer.text
    assert server_errors(base) == []


def test_windows_of_different_bar_counts_at_once_are_all_answered(service):
    """Before: the batcher concatenated unequal arrays outside its error handling; the batch's
    requests hung until BentoML's 30 s timeout and got 504."""
    base, _ = service
    n = features(base)
    rng = np.random.default_rng(0)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=60) as c:
            bodies = [
                {"request": {"windows": rng.normal(size=(2, 1 + 4 * (i % 2), n)).tolist()}}
                for i in range(24)
            ]
            return await asyncio.gather(*(c.post("/predict", json=b) for b in bodies))

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 24, {a.status_code for a in answers}
    assert all(np.shape(a.json()["predictions"]) == (2, 5) for a in answers)
    assert server_errors(base) == []


def test_schemathesis_finds_no_failure(service, tmp_path):
    """Every check schemathesis has, against the document the service serves: the 5xx, status,
    content type, header and schema conformance of every answer, that data the document allows
    is accepted and data it forbids is rejected, that auth is not ignored, unsupported methods.
    Only `413` is added to the statuses that may answer forbidden data: a body past the
    documented limits (windows, bars) is too large rather than malformed."""
    base, _ = service
    before = server_errors(base)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415",'
        ' "422", "428", "429"]\n'
    )
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{base}/docs.json", "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks", "all", "--max-examples", str(FUZZ_EXAMPLES), "--seed", "26",
    ]  # fmt: skip
    ran = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = ran.stdout + ran.stderr
    generated = re.search(r"(\d+) generated", report)
    sent = int(generated.group(1)) if generated else 0
    errors = [line for line in server_errors(base) if line not in before]
    print(f"\nfuzz cases sent and 5xx seen: {sent} cases, {len(errors)} 5xx")
    assert ran.returncode == 0, report[report.find("FAILURES") :][:6000]
    assert sent > 100 and errors == []


def test_an_open_api_on_every_interface_refuses_to_start(champion, tmp_path):
    """Before: `bentoml serve --host 0.0.0.0` without a token answered POST /admin/reload 200
    to anyone."""
    _, env, _ = champion
    port = free_port()
    process = start(service_command("0.0.0.0", port), env, tmp_path / "open.log")
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/admin/reload", json={}, timeout=5)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            pytest.fail(f"an open API on 0.0.0.0 answered /admin/reload {answer.status_code}")
    finally:
        stop(process)
    log = (tmp_path / "open.log").read_text()
    assert process.returncode != 0
    assert "refusing to serve on 0.0.0.0 without tokens" in log and "QTIS_API_OPEN=1" in log


def test_the_service_binds_loopback_by_default_and_warns_when_open(champion, tmp_path):
    """`bentoml serve` without --host (as a container of the Bento runs it): before, 0.0.0.0:3000;
    now QTIS_SERVE_HOST:QTIS_SERVE_PORT, 127.0.0.1 unless set."""
    _, env, _ = champion
    port = free_port()
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:QtisService"]
    log = tmp_path / "default.log"
    process = start(command, env | {"QTIS_SERVE_PORT": str(port)}, log)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}", log)
    finally:
        stop(process)
    text = log.read_text()
    assert f"listening on http://127.0.0.1:{port}" in text
    assert "the API is open" in text


def test_qtis_serve_refuses_an_open_api_on_every_interface(tmp_path):
    result = qtis("serve", "--host", "0.0.0.0", env={"QTIS_HOME": str(tmp_path / ".qtis")})
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "refusing to serve on 0.0.0.0 without tokens" in message and "QTIS_API_OPEN" in message
