"""Acting on drift: the verdicts of a run (retrain with a cooldown, demote on decay) and of a
shadow book, and alerts that reach a log and a real webhook once per window. The Dagster sensors
that act on them: tests/orchestration/test_monitoring_assets.py."""

from __future__ import annotations

import json
from datetime import timedelta

from monitoring.actions import decide, decide_shadow
from monitoring.alerts import AlertSink
from monitoring.settings import ActionSettings, AlertSettings
from tests.support.alerts import Webhook
from tests.support.drift import NOW, report


def test_verdicts_retrain_wait_for_the_cooldown_and_demote_on_decay():
    s = ActionSettings(retrain_cooldown_hours=24)
    assert decide(report(), None, NOW, s) == []
    (retrain,) = decide(report(data=True), None, NOW, s)
    assert retrain.action == "retrain" and "data drift of qtis-xgboost v1 (60% of" in retrain.reason
    (wait,) = decide(report(data=True), NOW - timedelta(hours=3), NOW, s)
    assert wait.action == "wait" and "cooldown until 2026-12-03 09:00" in wait.reason
    assert decide(report(data=True), NOW - timedelta(hours=25), NOW, s)[0].action == "retrain"
    demote, again = decide(report(data=True, decayed=True), None, NOW, s)
    assert demote.action == "demote" and "recent rank IC -0.200 < 0.000" in demote.reason
    assert again.action == "retrain"
    assert decide(report(decayed=True), None, NOW, ActionSettings(demote_on_decay=False)) == []


def test_alerts_go_to_the_log_and_a_webhook_once_per_window(tmp_path, caplog):
    with Webhook() as hook:
        url = hook.url
        sink = AlertSink(AlertSettings(log_file=tmp_path / "a.jsonl", webhook_url=url), tmp_path)
        assert sink.send("retrain:m", "warning", "drift", now=NOW)
        assert not sink.send("retrain:m", "warning", "drift again", now=NOW + timedelta(hours=1))
        assert sink.send("demote:m", "warning", "decay", now=NOW + timedelta(hours=1))
        assert sink.send("retrain:m", "warning", "still", now=NOW + timedelta(hours=7))
    logged = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [a["message"] for a in logged] == ["drift", "decay", "still"]
    assert [a["message"] for a in hook.received] == ["drift", "decay", "still"]
    dead = AlertSink(AlertSettings(log_file=tmp_path / "b.jsonl", webhook_url=url), tmp_path)
    assert dead.send("k", "warning", "nobody listens")  # logged, never raised
    assert "alert webhook" in caplog.text and (tmp_path / "b.jsonl").exists()


def test_shadow_verdicts_need_bars_and_significance():
    s = ActionSettings(shadow_min_bars=60, shadow_significance=0.05)
    assert decide_shadow("s", 30, 0.001, s).action == "wait"
    assert decide_shadow("s", 100, 0.2, s).action == "wait"
    replace = decide_shadow("s", 100, 0.01, s)
    assert replace.action == "replace" and "p=0.01 < 0.05" in replace.reason
