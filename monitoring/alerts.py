"""Alerts that reach a person: one JSON line per alert in a log file, and a POST of the same
JSON to a webhook (Slack, Teams or anything that takes JSON) when one is configured. The same
alert key is sent once per ``dedup_hours``: a drift that persists does not page every run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from monitoring.settings import AlertSettings

log = logging.getLogger(__name__)


class AlertSink:
    def __init__(self, settings: AlertSettings, home: Path) -> None:
        """``home``: QTIS_HOME, where the log goes unless QTIS_ALERT_LOG_FILE says."""
        self.settings = settings
        self.path = settings.log_file or home / "alerts.jsonl"

    def _last_sent(self, key: str) -> datetime | None:
        if not self.path.exists():
            return None
        last = None
        for line in self.path.read_text().splitlines():
            alert = json.loads(line)
            if alert["key"] == key:
                last = datetime.fromisoformat(alert["at"])
        return last

    def send(self, key: str, severity: str, message: str, now: datetime | None = None) -> bool:
        """Record and deliver an alert; False when the same key was sent within the dedup
        window. A webhook that fails is logged, never raised: monitoring must not stop."""
        now = now or datetime.now(UTC)
        last = self._last_sent(key)
        if last is not None and now - last < timedelta(hours=self.settings.dedup_hours):
            return False
        alert = {"at": now.isoformat(), "key": key, "severity": severity, "message": message}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(alert) + "\n")
        if self.settings.webhook_url:
            try:
                answer = httpx.post(
                    self.settings.webhook_url, json=alert, timeout=self.settings.timeout
                )
                answer.raise_for_status()
            except httpx.HTTPError as exc:
                log.error("alert webhook %s failed: %s", self.settings.webhook_url, exc)
        return True
