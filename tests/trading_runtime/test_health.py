"""/metrics and /healthz of the live service (trading_runtime.health, live_status)."""

from __future__ import annotations

import httpx
import pytest

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.health import HealthServer
from trading_runtime.live_status import LiveStatus
from trading_runtime.telemetry import RuntimeMetrics
from warehouse.live import SourceStats


def test_healthz_names_what_is_wrong_and_metrics_are_served():
    status, metrics = LiveStatus("s"), RuntimeMetrics("s")
    with HealthServer(metrics.registry, status.health) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        status.observe(ev.FeedStatus("stale", "no bar for 120 s", None), Book())
        status.source = SourceStats(connected=False)
        answer = httpx.get(f"{server.url}/healthz")
        assert answer.status_code == 503
        problems = answer.json()["problems"]
        assert problems[0].startswith("feed stale: no bar for 120 s")
        assert "market data stream disconnected (reconnecting)" in problems
        assert "qtis_equity" in httpx.get(f"{server.url}/metrics").text
        assert httpx.get(f"{server.url}/other").status_code == 404


def test_beyond_loopback_only_when_asked():
    with pytest.raises(ValueError, match="reachable from other machines"):
        HealthServer(RuntimeMetrics("s").registry, LiveStatus("s").health, "0.0.0.0")
