"""``POST /predict`` with a binary body: the windows as one ``.npy`` array (``application/x-npy``,
numpy's own format, shape (windows, bars, features), any real dtype; ``numpy.save`` writes it).

Why: a JSON window of 60 bars x 56 features is 3,360 numbers to parse and validate one by one,
which costs the service far more than scoring it (profiled under load: pydantic's validation
and BentoML's request handling took three quarters of the worker, the model call under 1%). An
``.npy`` body is read with one copy and checked as an array, and it is answered here, in front
of BentoML's API machinery, by the same checks, batcher, logging and response model as JSON.

A body that is not a single ``.npy`` array of real numbers (wrong magic, pickled objects,
truncated data, bytes after the array, strings) is a 400 naming what is wrong; shapes the
model cannot score get the same 4xx the JSON path gives.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Awaitable, Callable

import numpy as np

from serving.auth import reply
from serving.errors import RequestError

NPY = "application/x-npy"
MAGIC = b"\x93NUMPY"
ROUTE = "/predict"

Answer = Callable[[np.ndarray], Awaitable[bytes]]


def media_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Content-Type's media type, lower case, without parameters (None: not given)."""
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


def read_npy(body: bytes) -> np.ndarray:
    """``body`` as a (windows, bars, features) array of real numbers, or a 400 saying why not.
    The header's shape is checked against the bytes that follow it before anything is
    allocated: a small body claiming a huge shape is refused, not a MemoryError."""
    try:
        shape, fortran, dtype, offset = _header(body)
        if dtype.hasobject:
            raise ValueError("object arrays need allow_pickle, which is refused")
        if dtype.kind not in "fiu":
            raise ValueError(f"dtype {dtype} is not a real number type")
    except ValueError as exc:
        raise RequestError(
            f"body: not a .npy array of (windows, bars, features) numbers ({NPY}): {exc}",
            "body",
            400,
        ) from exc
    expected, data = math.prod(shape) * dtype.itemsize, memoryview(body)[offset:]
    if len(data) < expected:
        raise RequestError(
            f"body: the .npy header says {shape} {dtype}, expected {expected} bytes of data,"
            f" got {len(data)}",
            "body",
            400,
        )
    if len(data) > expected:
        raise RequestError(f"body: {len(data) - expected} bytes after the .npy array", "body", 400)
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if array.ndim != 3 or 0 in array.shape:
        raise RequestError(
            f"windows must be a non-empty (windows, bars, features) array, got shape {array.shape}",
            "windows",
        )
    return array


def _header(body: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """The shape, Fortran order and dtype of a ``.npy`` header (format 1.0 or 2.0), and where
    its data starts. Parsed once per distinct header: numpy reads it with ``ast.literal_eval``,
    7% of the worker under load, and the requests of one client repeat the same header."""
    end = 8  # the magic and the version: all a malformed body's error needs
    if body[:6] == MAGIC and body[6:8] in (b"\x01\x00", b"\x02\x00"):
        size = 2 if body[6] == 1 else 4  # the header's length, then the header
        end = 8 + size + int.from_bytes(body[8 : 8 + size], "little")
    return _parsed(bytes(body[:end]))


@functools.lru_cache(maxsize=64)
def _parsed(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    stream = io.BytesIO(header)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format {version[0]}.{version[1]}: only 1.0 and 2.0 are read")
    return shape, fortran, dtype, stream.tell()


class ArrayBodies:
    """ASGI middleware: ``POST /predict`` with an ``application/x-npy`` body is answered by
    ``answer()(windows)`` (the running service's); every other request passes on. It sits inside the
    authentication and the body guard, so both hold for it as for JSON."""

    def __init__(
        self, app, answer: Callable[[], Answer], rejected: Callable[[RequestError], None]
    ) -> None:
        self.app, self.answer, self.rejected = app, answer, rejected

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("path") != ROUTE
            or scope.get("method") != "POST"
            or media_type(scope.get("headers") or []) != NPY
        ):
            return await self.app(scope, receive, send)
        message = await receive()  # the body guard hands the whole body in one message
        try:
            body = await self.answer()(read_npy(message.get("body", b"")))
        except RequestError as exc:
            self.rejected(exc)
            headers = [(b"retry-after", b"1")] if exc.status == 429 else []
            return await reply(send, exc.status, {"error": str(exc), "field": exc.field}, headers)
        await reply(send, 200, body)
