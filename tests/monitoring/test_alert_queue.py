"""The background alert queue never blocks its sender: ``send`` returns while the webhook still
holds the request, and when the queue is full an alert is dropped with a counted warning. The
engine-level check (a slow webhook does not hold up a run) is
tests/trading_runtime/test_telemetry.py."""

from __future__ import annotations

import logging
from datetime import timedelta

from monitoring.alert_queue import AlertQueue
from monitoring.alerts import AlertSink
from monitoring.settings import AlertSettings
from tests.support.alerts import HOLD_LIMIT, Webhook, logged_keys
from tests.support.drift import NOW


def test_a_full_queue_drops_with_a_counted_warning_and_never_blocks(tmp_path, caplog):
    with Webhook() as hook:
        hook.hold()  # the webhook hangs: the worker is stuck on the first alert
        sink = AlertSink(AlertSettings(log_file=tmp_path / "a.jsonl", webhook_url=hook.url,
                                       timeout=HOLD_LIMIT), tmp_path)  # fmt: skip
        queue = AlertQueue(sink, size=1)
        assert queue.send("a", "warning", "first", now=NOW)
        assert hook.arrived.wait(HOLD_LIMIT)  # the worker took it and waits on the webhook
        assert queue.send("b", "warning", "second", now=NOW)  # waits in the queue
        with caplog.at_level(logging.WARNING):
            assert not queue.send("c", "critical", "third", now=NOW)  # full: dropped
        assert not queue.send("a", "warning", "first again", now=NOW)  # a duplicate: no drop
        assert queue.dropped == 1 and queue.pending == 1
        assert "alert queue full" in caplog.text and "dropped c" in caplog.text
        hook.release()
        queue.close()
    assert queue.delivered == 2 and queue.failed == 0
    assert [a["key"] for a in hook.answered] == ["a", "b"] == logged_keys(tmp_path / "a.jsonl")
    # the dropped alert was not counted as sent: it goes out the next time it is raised
    assert sink.send("c", "critical", "third", now=NOW + timedelta(minutes=1))


def test_a_queued_alert_does_not_wait_for_the_webhook(tmp_path):
    """``send`` returns while the webhook still holds the request; the answer comes later and
    is delivered, not timed out."""
    with Webhook() as hook:
        hook.hold()
        sink = AlertSink(AlertSettings(log_file=tmp_path / "a.jsonl", webhook_url=hook.url,
                                       timeout=HOLD_LIMIT), tmp_path)  # fmt: skip
        queue = AlertQueue(sink, size=10)
        assert queue.send("k", "critical", "halted", now=NOW)
        assert hook.arrived.wait(HOLD_LIMIT)
        assert hook.answered == [] and queue.delivered == 0  # still held, and send returned
        hook.release()
        queue.close()
    assert queue.delivered == 1 and [a["key"] for a in hook.answered] == ["k"]
