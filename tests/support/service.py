"""The real BentoML prediction service in a subprocess on a free port, as `qtis serve` starts
it: the serving tests run against it over HTTP."""

from __future__ import annotations

import io
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.launch import service_command, service_env


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    """``array`` as an ``application/x-npy`` request body."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` with ``env`` over this process's environment, its output going to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return subprocess.Popen(
            command, env=service_env(), stdout=log.open("w"), stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def running_service(env: dict[str, str], log: Path) -> Iterator[str]:
    """The service started with ``env`` on loopback; yields its base URL once /readyz answers
    200 and stops it afterwards. Its output goes to ``log``."""
    port = free_port()
    process = start(service_command("127.0.0.1", port), env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, log)
        yield base
    finally:
        stop(process)


def server_errors(base: str) -> list[str]:
    """The request counters of any 5xx answer that was counted (BentoML lists them at 0)."""
    return [
        line
        for line in httpx.get(base + "/metrics").text.splitlines()
        if line.startswith("bentoml_service_request_total")
        and 'http_response_code="5' in line
        and float(line.rsplit(" ", 1)[1]) != 0
    ]


def wait_ready(process: subprocess.Popen, base: str, log: Path, path: str = "/readyz") -> None:
    """Until ``base``+``path`` answers 200; fails with the log's tail if the process exits."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"service exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"service not ready in 120 s:\n{log.read_text()[-3000:]}")
