"""The alert sink: its de-duplication lives in memory (the log is read once, and a corrupt line
in it is skipped), and a failing webhook is logged by its host only (its path is its
credential). The background queue: test_alert_queue.py."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta

from monitoring.alerts import AlertSink
from monitoring.settings import AlertSettings
from tests.support.alerts import Webhook, logged_keys
from tests.support.drift import NOW


def test_a_truncated_log_line_is_skipped_with_a_warning(tmp_path, caplog):
    """A crash in the middle of a write leaves half a line: every later start used to fail on it."""
    log = tmp_path / "alerts.jsonl"
    kept = {"at": (NOW - timedelta(hours=1)).isoformat(), "key": "k", "severity": "info",
            "message": "m"}  # fmt: skip
    log.write_text(json.dumps(kept) + '\n{"at": "2026-12-03T0')  # the crash cut the last line
    with caplog.at_level(logging.WARNING):
        sink = AlertSink(AlertSettings(log_file=log), tmp_path)
        assert not sink.send("k", "info", "again", now=NOW)  # the good line still de-duplicates
        assert sink.send("new", "info", "after the crash", now=NOW)
    assert "skipped 1 unreadable line" in caplog.text and "line 2" in caplog.text
    # the next alert starts a line of its own: it is not glued to the broken one
    assert AlertSink(AlertSettings(log_file=log), tmp_path).send("x", "info", "m", now=NOW)
    lines = log.read_text().splitlines()
    assert json.loads(lines[2])["key"] == "new" and json.loads(lines[3])["key"] == "x"


def test_the_dedup_window_is_kept_in_memory_not_re_read_per_alert(tmp_path):
    """The log is read once, when the sink starts; a rotated (removed) log does not make the
    same alert page again inside its window."""
    log = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(log_file=log, dedup_hours=6), tmp_path)
    assert sink.send("halted", "critical", "m", now=NOW)
    log.unlink()  # logrotate moved it away
    assert not sink.send("halted", "critical", "m", now=NOW + timedelta(hours=1))
    assert sink.send("halted", "critical", "m", now=NOW + timedelta(hours=7))
    assert logged_keys(log) == ["halted"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_failures_log_the_host_never_the_url(tmp_path, caplog):
    secret = "/services/T000/B000/s3cr3tPath?token=s3cr3tQuery"
    with Webhook(status=404) as hook, caplog.at_level(logging.WARNING):
        url = hook.url.replace("/hook", secret)
        sink = AlertSink(AlertSettings(log_file=tmp_path / "a.jsonl", webhook_url=url), tmp_path)
        assert sink.send("k", "warning", "refused by the hook", now=NOW)
        closed = f"http://user:pw@127.0.0.1:{free_port()}{secret}"
        dead = AlertSink(AlertSettings(log_file=tmp_path / "b.jsonl", webhook_url=closed), tmp_path)
        assert dead.send("k", "warning", "nobody listens", now=NOW)
    failures = [r.getMessage() for r in caplog.records if "alert webhook" in r.getMessage()]
    assert len(failures) == 2, caplog.text
    assert "127.0.0.1" in failures[0] and "HTTP 404" in failures[0]
    assert "127.0.0.1" in failures[1] and "ConnectError" in failures[1]
    for leaked in ("s3cr3t", "token", "services", "user:pw", "pw@"):
        assert leaked not in caplog.text
