"""The OpenAPI document at ``/docs.json``, made true to what the service accepts.

BentoML writes the document from the request models alone, so it cannot know what depends on
the model being served (features per bar, bars per window), on the warehouse (which symbols
exist) or on the settings (windows per request), nor the statuses this service answers besides
200/400/404/500. The :class:`ApiDocument` middleware rewrites the document on each request
from :class:`Shapes` that the running service reports, so a client, or a fuzzer, reads the
same constraints the service enforces: a body that conforms is answered 200 (404 when a symbol
has no complete window up to ``as_of``), one that does not is a 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serving.schemas import FLOAT32_MAX

DOC_PATH = "/docs.json"
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_BODY = {
    "type": "object",
    "title": "ErrorBody",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, naming the field"},
        "field": {"type": "string", "nullable": True, "description": "the field at fault"},
        "detail": {
            "type": "array",
            "items": {"type": "object"},
            "description": "a 400's validation errors as pydantic reports them",
        },
    },
}
STATUSES = {
    400: "malformed JSON, or a body that does not match the request schema",
    401: "no known bearer token",
    403: "the token lacks the route's role",
    404: "a symbol without a complete window up to as_of, or not in the warehouse",
    409: "the request conflicts with what is served (no earlier champion, not explainable)",
    413: "body over QTIS_SERVE_MAX_BODY_BYTES, or more windows or bars than the limits below",
    415: "a body that is not application/json",
    422: "bars of different lengths within a window, the wrong feature count, too few bars",
    429: "over the caller's rate, the service's concurrency or its queue: retry after Retry-After",
}
BODY_REQUIRED = ("/predict", "/explain")  # their input has a required field
# the statuses each operation may answer besides BentoML's 200/400/500; 401/403 when secured
ANSWERS = {
    "/predict": (404, 413, 415, 422, 429),
    "/explain": (404, 409, 413, 415, 422, 429),
    "/admin/reload": (413, 415, 429),
    "/admin/rollback": (409, 413, 415, 429),
    "/model": (429,),
}


@dataclass(frozen=True)
class Shapes:
    """What the service accepts right now."""

    features: int  # values per bar: the champion's features
    min_bars: int  # the champion's window
    max_bars: int  # QTIS_SERVE_MAX_BARS
    max_windows: int  # QTIS_SERVE_MAX_WINDOWS
    symbols: tuple[str, ...]  # in the warehouse
    secured: bool  # bearer tokens are required


def _window(shapes: Shapes) -> dict:
    value = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    bar = {
        "type": "array",
        "items": value,
        "minItems": shapes.features,
        "maxItems": shapes.features,
        "description": "one bar: the features in the order GET /model lists",
    }
    return {
        "type": "array",
        "items": bar,
        "minItems": shapes.min_bars,
        "maxItems": shapes.max_bars,
        "description": f"bars, oldest first: at least the model's window ({shapes.min_bars})",
    }


def _request(title: str, by_value: tuple[str, dict], by_symbol: tuple[str, dict] | None) -> dict:
    """``title``: an object holding exactly one of the two inputs (as_of only with a symbol)."""
    as_of = {"type": "string", "format": "date-time", "description": "window end; default: latest"}
    branches = [_object({by_value[0]: by_value[1]}, by_value[0])]
    if by_symbol is not None:
        branches.append(_object({by_symbol[0]: by_symbol[1], "as_of": as_of}, by_symbol[0]))
    return {"title": title, "oneOf": branches}


def _object(properties: dict, required: str) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": [required],
        "additionalProperties": False,
    }


def requests(shapes: Shapes) -> dict[str, dict]:
    """The request schemas of /predict and /explain for ``shapes``."""
    window = _window(shapes)
    symbol = {"type": "string", "enum": list(shapes.symbols)} if shapes.symbols else None
    many = {"minItems": 1, "maxItems": shapes.max_windows}
    windows = ("windows", {"type": "array", "items": window, **many})
    symbols = ("symbols", {"type": "array", "items": symbol, **many}) if symbol else None
    return {
        "PredictRequest": _request("PredictRequest", windows, symbols),
        "ExplainRequest": _request(
            "ExplainRequest", ("window", window), ("symbol", symbol) if symbol else None
        ),
    }


def _nullable_defaults(node: Any) -> None:
    """A property that defaults to null may be null: BentoML drops the null of an Optional
    field when it writes a response schema."""
    if isinstance(node, dict):
        for prop in (node.get("properties") or {}).values():
            if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
                prop["nullable"] = True
        for child in node.values():
            _nullable_defaults(child)
    elif isinstance(node, list):
        for child in node:
            _nullable_defaults(child)


def document(spec: dict, shapes: Shapes) -> dict:
    """``spec`` (BentoML's document) with the request shapes, statuses and security of
    ``shapes``."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _nullable_defaults(spec)
    schemas.update(requests(shapes))
    schemas["ErrorBody"] = ERROR_BODY
    if shapes.secured:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, statuses in ANSWERS.items():
        for operation in spec.get("paths", {}).get(path, {}).values():
            codes = (400, *statuses, 401, 403) if shapes.secured else (400, *statuses)
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses[str(code)] = {
                    "description": STATUSES[code],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
            if shapes.secured:
                operation["security"] = [{"bearer": []}]
            if path in BODY_REQUIRED and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return spec


class ApiDocument:
    """ASGI middleware: the answer to GET /docs.json passes through :func:`document`."""

    def __init__(self, app, shapes: Callable[[], Shapes]) -> None:
        self.app, self.shapes = app, shapes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") != DOC_PATH:
            return await self.app(scope, receive, send)
        held: dict[str, Any] = {"body": b""}

        async def rewriting_send(message) -> None:
            if message["type"] == "http.response.start":
                held["start"] = message
                return
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            start, body = held["start"], held["body"]
            if start["status"] == 200:
                body = json.dumps(document(json.loads(body), self.shapes())).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewriting_send)
