"""Alerts that reach a person: one JSON line per alert in a log file, and a POST of the same
JSON to a webhook (Slack, Teams or anything that takes JSON) when one is configured. The same
alert key is sent once per ``dedup_hours``: a drift that persists does not page every run.

The de-duplication is kept in memory: the log is read once, when the sink is made (a line it
cannot read, such as one cut short by a crash, is skipped with a warning), not once per alert.
A webhook that fails is logged by its host only - a webhook URL's path is its credential.
Senders that must not wait on a slow webhook (a trading engine) go through
:class:`monitoring.alert_queue.AlertQueue`."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from monitoring.settings import AlertSettings

log = logging.getLogger(__name__)


class AlertSink:
    def __init__(self, settings: AlertSettings, home: Path) -> None:
        """``home``: QTIS_HOME, where the log goes unless QTIS_ALERT_LOG_FILE says."""
        self.settings = settings
        self.path = settings.log_file or home / "alerts.jsonl"
        self._lock = threading.Lock()  # claims come from the sender, deliveries from a worker
        self._last_sent = _read_last_sent(self.path)

    def send(self, key: str, severity: str, message: str, now: datetime | None = None) -> bool:
        """Record and deliver an alert; False when the same key was sent within the dedup
        window. A webhook that fails is logged, never raised: monitoring must not stop."""
        alert = self.claim(key, severity, message, now)
        if alert is None:
            return False
        self.deliver(alert)
        return True

    def claim(
        self, key: str, severity: str, message: str, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """The alert to deliver, or None when ``key`` was sent within the dedup window. From
        now on the key counts as sent (:meth:`unclaim` undoes it for an alert never sent)."""
        now = now or datetime.now(UTC)
        with self._lock:
            last = self._last_sent.get(key)
            if last is not None and now - last < timedelta(hours=self.settings.dedup_hours):
                return None
            self._last_sent[key] = now
        return {"at": now.isoformat(), "key": key, "severity": severity, "message": message}

    def unclaim(self, alert: dict[str, Any]) -> None:
        """Forget a claimed ``alert`` that was dropped: the next one with its key goes out.
        (An earlier sending it replaced was outside the window, so it no longer counts.)"""
        with self._lock:
            if self._last_sent.get(alert["key"]) == datetime.fromisoformat(alert["at"]):
                del self._last_sent[alert["key"]]

    def deliver(self, alert: dict[str, Any]) -> bool:
        """Append ``alert`` to the log and POST it to the webhook; False when the webhook
        failed (logged with its host, never raised)."""
        _append_line(self.path, json.dumps(alert))
        url = self.settings.webhook_url
        if not url:
            return True
        try:
            answer = httpx.post(url, json=alert, timeout=self.settings.timeout)
            answer.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.error("alert webhook at %s failed: %s", _host(url), _why(exc, url))
            return False
        return True


def _read_last_sent(path: Path) -> dict[str, datetime]:
    """When each key was last sent, from the log; lines that do not parse are skipped."""
    last: dict[str, datetime] = {}
    if not path.exists():
        return last
    bad: list[int] = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                alert = json.loads(line)
                last[alert["key"]] = datetime.fromisoformat(alert["at"])
            except (ValueError, KeyError, TypeError):
                bad.append(number)
    if bad:
        log.warning(
            "alert log %s: skipped %d unreadable line(s) (first: line %d)", path, len(bad), bad[0]
        )
    return last


def _append_line(path: Path, line: str) -> None:
    """``line`` on a line of its own, even after a last line a crash cut short."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab+") as out:
        size = out.seek(0, os.SEEK_END)
        if size:
            out.seek(size - 1)
            if out.read(1) != b"\n":
                line = "\n" + line
        out.write((line + "\n").encode())


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


def _why(exc: Exception, url: str) -> str:
    """What went wrong, without the URL: an HTTP error's text quotes it in full."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {str(exc).replace(url, _host(url))}"
