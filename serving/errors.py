"""What a request or a start can fail with: :class:`RequestError` (a 4xx naming the field at
fault) and :class:`NoChampion`. BentoML answers a request that fails validation with 400 and
``{"error": "1 validation error for Input", "detail": [...]}``; the middleware here rewrites that
body so its message names the field (``request.windows.0.3.2: Input should be a finite number``)
and adds ``field``, as every other 4xx of the API does. Other responses pass through untouched."""

from __future__ import annotations

import json

from core.errors import InputError, MissingStep


class RequestError(ValueError, InputError):
    """A request the service cannot answer, with the field at fault: a 4xx, never a 500."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


class NoChampion(RuntimeError, MissingStep):
    """No loadable model holds @champion: the service does not start."""


def _readable(body: dict) -> dict:
    details = body.get("detail") or []
    if not isinstance(details, list) or not details:
        return body
    first = details[0]
    field = ".".join(str(p) for p in first.get("loc", [])) or None
    message = first.get("msg", "invalid request")
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    where = f"{field}: " if field else ""
    return {"error": f"{where}{message}{more}", "field": field, "detail": details}


class ValidationMessages:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict = {}

        async def rewriting_send(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                held["start"] = message
                held["body"] = b""
                return
            if "start" not in held:
                return await send(message)
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            body = held["body"]
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict) and "detail" in parsed:
                    body = json.dumps(_readable(parsed)).encode()
            except ValueError:
                pass
            start = held["start"]
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewriting_send)
