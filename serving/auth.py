"""Bearer tokens with roles, rate limits and an audit line per admin action, as an ASGI
middleware in front of the service. Health, metrics and the API docs stay open.

Tokens come from ``QTIS_API_TOKEN`` (every role) and/or ``QTIS_API_TOKEN_FILE``, a YAML or JSON
mapping ``token: role`` or ``token: [roles]``; ``admin`` includes ``predict``; every token has at
least 16 characters. With neither set the API is open: the service logs a warning, and refuses
to start on an interface other than loopback unless ``QTIS_API_OPEN`` says so
(:func:`check_exposure`). Tokens are compared in constant time and only their hash prefix is
ever logged.

Rate limits: a caller without a known token is limited per client address, before anything else
is done for it (no audit line, no body read); a known token has its own bucket.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.errors import ConfigError
from core.net import is_loopback
from serving.audit import AuditLog
from serving.settings import TOKEN_MIN_LENGTH, ServingSettings

log = logging.getLogger("qtis.serving")

ROLES = ("predict", "admin")
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json", "/favicon.ico")
ROUTE_ROLES = {"/predict": "predict", "/explain": "predict", "/model": "predict"}
ADMIN_PREFIX = "/admin"


class TokenFileError(ValueError, ConfigError):
    pass


class OpenExposure(ConfigError):
    """An API without tokens on an interface others can reach, not asked for explicitly."""


def check_exposure(hosts: Iterable[str], settings: ServingSettings) -> None:
    """Refuse to serve an open API (no token set) on a non-loopback ``hosts`` entry unless
    QTIS_API_OPEN is set; warn whenever the API is open."""
    if settings.api_token or settings.api_token_file:
        return
    exposed = sorted({h for h in hosts if not is_loopback(h)})
    if exposed and not settings.api_open:
        raise OpenExposure(
            f"refusing to serve on {', '.join(exposed)} without tokens: set QTIS_API_TOKEN or "
            "QTIS_API_TOKEN_FILE, bind 127.0.0.1 (QTIS_SERVE_HOST), or set QTIS_API_OPEN=1 to "
            "let anyone who reaches it predict, reload and roll back"
        )
    log.warning(
        "the API is open: no QTIS_API_TOKEN or QTIS_API_TOKEN_FILE, so every caller on %s may "
        "predict, reload and roll back",
        ", ".join(sorted(set(hosts))) or "this host",
    )


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
        if len(str(token)) < TOKEN_MIN_LENGTH:
            raise TokenFileError(
                f"QTIS_API_TOKEN_FILE {path}: token {fingerprint(str(token))}... is shorter "
                f"than {TOKEN_MIN_LENGTH} characters"
            )
        out.append((str(token), roles))
    return out


@dataclass
class RateLimiter:
    """A token bucket per key (an API token, a client address): ``rate`` requests per second,
    bursts up to ``burst``. At most ``max_keys`` buckets are kept, the least recently used
    going first, so a caller with many addresses cannot grow it without bound."""

    rate: float
    burst: int
    max_keys: int = 100_000
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: str) -> float:
        """0 when allowed, else the seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return 0.0 if allowed else (1 - tokens) / self.rate


def required_role(path: str) -> str | None:
    """None for open paths; else the role the path needs (unknown paths need predict)."""
    if path in OPEN_PATHS or path.startswith("/docs") or path.startswith("/static_content"):
        return None
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    return ROUTE_ROLES.get(path, "predict")


async def reply(
    send, status: int, body: dict | bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON answer: ``body`` as a dict, or already encoded."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
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


def client_address(scope) -> str:
    """The peer's address (a proxy's, behind one: forwarded headers are not trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer(scope) -> str | None:
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, presented = header.partition(" ")
    return presented.strip() or None if scheme.lower() == "bearer" else None


class BearerAuth:
    """ASGI middleware. A caller without a known token is first held to its address's rate
    (429), then refused (401) when tokens are set; a known token needs the route's role (403)
    and stays within its own rate (429). Admin requests leave an audit line with the token's
    fingerprint, the client address and the outcome."""

    def __init__(self, app, settings: ServingSettings, home: Path) -> None:
        """``home``: QTIS_HOME, where the audit log goes unless QTIS_SERVE_AUDIT_LOG says."""
        self.app = app
        self.tokens = TokenTable.from_settings(settings)
        self.limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_burst)
        self.anonymous = RateLimiter(
            settings.api_anonymous_rate_limit, settings.api_anonymous_rate_burst
        )
        self.audit = AuditLog(settings.serve_audit_log or home / "logs" / "serving-audit.log")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        role = required_role(path)
        if role is None:
            return await self.app(scope, receive, send)
        client = client_address(scope)
        presented = bearer(scope) if self.tokens.enabled else None
        roles = self.tokens.roles(presented) if presented else None
        if roles is None:  # unauthenticated: held to its address's rate before anything else
            limiter = self.anonymous if self.tokens.enabled else self.limiter
            if wait := limiter.allow(client):
                return await too_many(send, wait)
            if self.tokens.enabled:
                message = "unknown token" if presented else "missing bearer token"
                who = fingerprint(presented) if presented else None
                return await self._deny(send, 401, message, path, who, client)
            who = "anonymous"
        else:
            who = fingerprint(presented)
            if role not in roles:
                message = f"this token lacks the {role!r} role"
                return await self._deny(send, 403, message, path, who, client)
            if wait := self.limiter.allow(who):
                return await too_many(send, wait)
        if role != "admin":
            return await self.app(scope, receive, send)
        await self._audited(scope, receive, send, who, client)

    async def _audited(self, scope, receive, send, who: str, client: str) -> None:
        path, answered = scope.get("path", ""), False

        async def recording_send(message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":  # queued before the caller hears
                answered = True
                self.audit.write(token=who, client=client, path=path, status=message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not answered:
                self.audit.write(
                    token=who, client=client, path=path, status=None, error="no response"
                )

    async def _deny(self, send, status: int, message: str, path: str, who, client: str) -> None:
        if path.startswith(ADMIN_PREFIX):
            self.audit.write(token=who, client=client, path=path, status=status, error=message)
        headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await reply(send, status, {"error": message, "field": None}, headers)


async def too_many(send, wait: float) -> None:
    headers = [(b"retry-after", str(max(1, round(wait))).encode())]
    await reply(send, 429, {"error": "rate limit exceeded", "field": None}, headers)
