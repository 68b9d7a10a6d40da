"""Bearer tokens with roles, per-token rate limits and an audit line per admin action, as an ASGI
middleware in front of the service. Health, metrics and the API docs stay open.

Tokens come from ``QTIS_API_TOKEN`` (every role) and/or ``QTIS_API_TOKEN_FILE``, a YAML or JSON
mapping ``token: role`` or ``token: [roles]``; ``admin`` includes ``predict``. With neither set
the API is open (the service says so when it starts). Tokens are compared in constant time and
only their hash prefix is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from core.errors import ConfigError
from serving.settings import ServingSettings

log = logging.getLogger("qtis.serving")

ROLES = ("predict", "admin")
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json", "/favicon.ico")
ROUTE_ROLES = {"/predict": "predict", "/explain": "predict", "/model": "predict"}
ADMIN_PREFIX = "/admin"


class TokenFileError(ValueError, ConfigError):
    pass


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TokenTable:
    tokens: tuple[tuple[bytes, frozenset[str]], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def roles(self, presented: str) -> frozenset[str] | None:
        """The roles of ``presented``, comparing it with every known token (no early exit)."""
        given = presented.encode()
        found: frozenset[str] | None = None
        for token, roles in self.tokens:
            if hmac.compare_digest(given, token):
                found = roles
        return found

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> TokenTable:
        pairs: list[tuple[str, Iterable[str]]] = []
        if settings.api_token:
            pairs.append((settings.api_token, ROLES))
        if settings.api_token_file:
            pairs += _read_token_file(settings.api_token_file)
        table = []
        for token, roles in pairs:
            granted = set(roles)
            if "admin" in granted:
                granted.add("predict")
            table.append((token.encode(), frozenset(granted)))
        return cls(tuple(table))


def _read_token_file(path: Path) -> list[tuple[str, list[str]]]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TokenFileError(f"QTIS_API_TOKEN_FILE {path}: cannot read it: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise TokenFileError(f"QTIS_API_TOKEN_FILE {path}: expected a mapping token -> role(s)")
    out = []
    for token, roles in raw.items():
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not roles or set(roles) - set(ROLES):
            raise TokenFileError(
                f"QTIS_API_TOKEN_FILE {path}: token {fingerprint(str(token))}... has roles "
                f"{roles!r}; each must be one of {', '.join(ROLES)}"
            )
        if len(str(token)) < 16:
            raise TokenFileError(
                f"QTIS_API_TOKEN_FILE {path}: token {fingerprint(str(token))}... is shorter "
                "than 16 characters"
            )
        out.append((str(token), roles))
    return out


@dataclass
class RateLimiter:
    """A token bucket per API token: ``rate`` requests per second, bursts up to ``burst``."""

    rate: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: str) -> float:
        """0 when allowed, else the seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def required_role(path: str) -> str | None:
    """None for open paths; else the role the path needs (unknown paths need predict)."""
    if path in OPEN_PATHS or path.startswith("/docs") or path.startswith("/static_content"):
        return None
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    return ROUTE_ROLES.get(path, "predict")


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, **entry: object) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(), **entry}, default=str)
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")


async def reply(send, status: int, body: dict, headers: Iterable[tuple[bytes, bytes]] = ()):
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BearerAuth:
    """ASGI middleware: 401 without a known token, 403 without the route's role, 429 over the
    token's rate; admin requests leave an audit line with their outcome."""

    def __init__(self, app, settings: ServingSettings, home: Path) -> None:
        """``home``: QTIS_HOME, where the audit log goes unless QTIS_SERVE_AUDIT_LOG says."""
        self.app = app
        self.tokens = TokenTable.from_settings(settings)
        self.limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.audit = AuditLog(settings.serve_audit_log or home / "logs" / "serving-audit.log")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        role = required_role(path)
        if role is None:
            return await self.app(scope, receive, send)
        who = "anonymous"
        if self.tokens.enabled:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented:
                return await self._deny(send, 401, "missing bearer token", path, None)
            roles = self.tokens.roles(presented.strip())
            if roles is None:
                return await self._deny(send, 401, "unknown token", path, presented)
            who = fingerprint(presented.strip())
            if role not in roles:
                return await self._deny(send, 403, f"this token lacks the {role!r} role", path, who)
        wait = self.limiter.allow(who)
        if wait > 0:
            headers = [(b"retry-after", str(max(1, round(wait))).encode())]
            return await reply(send, 429, {"error": "rate limit exceeded", "field": None}, headers)
        if role != "admin":
            return await self.app(scope, receive, send)
        answered = False

        async def recording_send(message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":  # logged before the caller hears
                answered = True
                self.audit.write(token=who, path=path, status=message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not answered:
                self.audit.write(token=who, path=path, status=None, error="no response")

    async def _deny(self, send, status: int, message: str, path: str, who) -> None:
        if path.startswith(ADMIN_PREFIX):
            token = fingerprint(who) if who and status == 401 else who
            self.audit.write(token=token, path=path, status=status, error=message)
        headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await reply(send, status, {"error": message, "field": None}, headers)
