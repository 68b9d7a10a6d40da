"""What a request body must be before anything parses it: JSON, or ``.npy`` for ``POST
/predict`` (:mod:`serving.binary`), else 415; and at most
``QTIS_SERVE_MAX_BODY_BYTES`` (else 413, answered from the Content-Length header unread, or as
soon as a streamed body passes the cap). BentoML would otherwise hand any content type to its
form parser (a 500 for ``multipart/form-data`` without a boundary) and read any size."""

from __future__ import annotations

from serving.auth import reply
from serving.binary import NPY, ROUTE, media_type

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON = "application/json"
_UNSUPPORTED = f"send the body as {JSON} (or {NPY} to POST {ROUTE})"


def accepted(scope) -> bool:
    """JSON anywhere; an ``.npy`` array only where :class:`serving.binary.ArrayBodies` reads
    it."""
    media = media_type(scope.get("headers") or [])
    return media == JSON or (media == NPY and scope.get("path") == ROUTE)


class BodyGuard:
    """ASGI middleware: a request with a body reaches the service only as JSON within the cap;
    the body read here is handed on unchanged."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") in BODYLESS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        content_type, length = headers.get(b"content-type"), headers.get(b"content-length")
        if content_type is not None and not accepted(scope):
            return await _refuse(send, 415, _UNSUPPORTED, "content-type")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._too_large(send)
        body, whole = await _read(receive, self.max_bytes)
        if not whole:
            return await self._too_large(send) if body is not None else None  # None: gone
        if body and content_type is None:
            return await _refuse(send, 415, _UNSUPPORTED, "content-type")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        message = f"the body is over {self.max_bytes} bytes (QTIS_SERVE_MAX_BODY_BYTES)"
        await _refuse(send, 413, message, None)


async def _read(receive, limit: int) -> tuple[bytes | None, bool]:
    """(body, True) when read whole within ``limit``; (b"", False) past it; (None, False)
    when the client went away."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), True


async def _refuse(send, status: int, message: str, field: str | None) -> None:
    await reply(send, status, {"error": message, "field": field})
