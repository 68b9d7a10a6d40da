"""Acting on drift: the verdicts of a run (retrain with a cooldown, demote on decay), alerts
that reach a log and a real webhook once per window, and the Dagster sensor against real
tables: a retrain request, a roll-back of the champion recorded in mlops.promotions, and no
second request for the same run or within the cooldown."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from dagster import DagsterInstance, build_run_status_sensor_context, build_sensor_context

from monitoring.actions import decide, decide_shadow
from monitoring.alerts import AlertSink
from monitoring.drift_results import DriftReport, Measure, save
from monitoring.settings import ActionSettings, AlertSettings
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from quant.conventions import Conventions
from registry.aliases import force
from registry.model_registry import ModelRegistry
from registry.promotions import history, status
from serving.probe import serving_probe
from tests.support.promotion import relaxed
from training.runner import TrainConfig, run_training

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
SPAN = (datetime(2010, 1, 4, tzinfo=UTC), datetime(2011, 1, 3, tzinfo=UTC))


def report(data: bool = False, decayed: bool = False, model: str = "qtis-xgboost",
           version: str = "1", run_id: str = "r1") -> DriftReport:  # fmt: skip
    measures = [
        Measure("data", "share_drifted", 0.6 if data else 0.1, 0.3, data),
        Measure("prediction", "horizons_drifted", 0.0, 1.0, False),
        Measure("performance", "ic", -0.2 if decayed else 0.05, 0.0, decayed),
    ]
    return DriftReport(run_id, model, version, SPAN, (SPAN[1], NOW), measures, Path("r.html"))


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


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alerts_go_to_the_log_and_a_webhook_once_per_window(tmp_path, caplog):
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        sink = AlertSink(AlertSettings(log_file=tmp_path / "a.jsonl", webhook_url=url), tmp_path)
        assert sink.send("retrain:m", "warning", "drift", now=NOW)
        assert not sink.send("retrain:m", "warning", "drift again", now=NOW + timedelta(hours=1))
        assert sink.send("demote:m", "warning", "decay", now=NOW + timedelta(hours=1))
        assert sink.send("retrain:m", "warning", "still", now=NOW + timedelta(hours=7))
    finally:
        server.shutdown()
    logged = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [a["message"] for a in logged] == ["drift", "decay", "still"]
    assert [a["message"] for a in Hook.received] == ["drift", "decay", "still"]
    dead = AlertSink(AlertSettings(log_file=tmp_path / "b.jsonl", webhook_url=url), tmp_path)
    assert dead.send("k", "warning", "nobody listens")  # logged, never raised
    assert "alert webhook" in caplog.text and (tmp_path / "b.jsonl").exists()


@pytest.mark.slow
def test_the_sensor_requests_a_retrain_rolls_back_and_respects_its_cooldown(champion, tmp_path):
    url, env, _ = champion
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("QTIS_ALERT_LOG_FILE", str(tmp_path / "alerts.jsonl"))
        config = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=20, explain_samples=0)
        run_training(url, config, symbols=["IBM", "MSFT"])  # version 2
        force(url, "qtis-xgboost", "2", "sensor test", serving_probe(url), relaxed())
        sensor = defs.get_sensor_def("drift_sensor")
        instance = DagsterInstance.ephemeral()

        def tick(cursor):
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource()}
            )
            return sensor(context)

        save(url, report(data=True, decayed=True, version="2", run_id="drift-a"))
        first = tick(None)
        assert [r.run_key for r in first.run_requests] == ["drift-drift-a"]
        assert "data drift of qtis-xgboost v2" in first.run_requests[0].tags["qtis/reason"]
        last = history(url, limit=1).iloc[0]
        assert (last["decision"], last["model"], last["version"]) == (
            "rolled_back",
            "qtis-xgboost",
            "1",
        )
        assert (
            "decayed: recent rank IC -0.200" in last["reason"] and last["actor"] == "drift_sensor"
        )
        again = tick(first.cursor)
        assert not again.run_requests and "no new drift run" in again.skip_reason.skip_message
        save(url, report(data=True, run_id="drift-b"))
        cooled = tick(first.cursor)
        assert not cooled.run_requests and "cooldown until" in cooled.skip_reason.skip_message
    alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["key"] for a in alerts] == ["demote:qtis-xgboost", "retrain:qtis-xgboost",
                                          "wait:qtis-xgboost"]  # fmt: skip


def test_a_failed_run_is_a_critical_alert(tmp_path, monkeypatch):
    from dagster import DagsterEventType, job, op

    from orchestration.sensors import failed_run_alerts

    monkeypatch.setenv("QTIS_ALERT_LOG_FILE", str(tmp_path / "alerts.jsonl"))

    @op
    def boom():
        raise RuntimeError("the warehouse is unreachable")

    @job
    def doomed():
        boom()

    instance = DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="failed_run_alerts", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()  # fmt: skip
    failed_run_alerts(context)
    (alert,) = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alert["key"] == "run_failed:doomed" and alert["severity"] == "critical"
    assert "of doomed failed" in alert["message"]


def test_shadow_verdicts_need_bars_and_significance():
    s = ActionSettings(shadow_min_bars=60, shadow_significance=0.05)
    assert decide_shadow("s", 30, 0.001, s).action == "wait"
    assert decide_shadow("s", 100, 0.2, s).action == "wait"
    replace = decide_shadow("s", 100, 0.01, s)
    assert replace.action == "replace" and "p=0.01 < 0.05" in replace.reason


@pytest.mark.slow
def test_the_shadow_sensor_replaces_the_champion_by_a_challenger_that_traded_better(
    champion, tmp_path
):
    """A real stream: a live SMA cross and a shadow buy-and-hold on the bundled bars; the
    sensor waits while the paired test's p is above the level and replaces the champion by the
    @challenger once it is below, once per stream."""
    from trading_runtime.ab import compare
    from trading_runtime.config import RunConfig, StrategyConfig
    from trading_runtime.runs import report as stream_report
    from trading_runtime.runs import run

    url, env, _ = champion
    live = StrategyConfig(name="trend", signal="sma-cross", fast=10, slow=40, sizing="fixed")
    shadow = StrategyConfig(name="hold", signal="buy-and-hold", sizing="equal", shadow=True)
    config = RunConfig(stream="shadow-sensor", strategies=[live, shadow], start=date(2011, 1, 3))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("QTIS_ALERT_LOG_FILE", str(tmp_path / "alerts.jsonl"))
        mp.setenv("QTIS_MONITOR_SHADOW_STREAM", "shadow-sensor")
        run(url, config, venue_log=tmp_path / "venue.jsonl")
        p = compare(
            stream_report(url, "shadow-sensor", Conventions()), Conventions()
        ).p_shadow_better
        assert 0 < p < 0.9
        train = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=20, explain_samples=0)
        info = run_training(url, train, symbols=["IBM", "MSFT"]).registered["xgboost"]
        challenger = (info["registered"], str(info["version"]))
        before = status(url, limit=0)["champion"]
        ModelRegistry(url).move_alias("challenger", *challenger)
        sensor = defs.get_sensor_def("shadow_sensor")
        instance = DagsterInstance.ephemeral()

        def tick(cursor, level: float):
            mp.setenv("QTIS_MONITOR_SHADOW_SIGNIFICANCE", str(level))
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource()}
            )
            return sensor(context)

        waited = tick(None, p / 2)
        assert "did not trade significantly better" in waited.skip_reason.skip_message
        assert status(url, limit=0)["champion"] == before
        acted = tick(None, min(0.99, p * 1.5))
        assert status(url, limit=0)["champion"] == challenger
        assert status(url, limit=0)["challenger"] is None
        last = history(url, limit=1).iloc[0]
        assert (last["model"], last["version"], last["decision"], last["actor"]) == (
            *challenger,
            "promoted",
            "shadow_sensor",
        )
        assert "shadow book beat the champion" in last["reason"]
        assert f"from {before[0]} v{before[1]}" in last["reason"]
        again = tick(acted.cursor, 0.99)
        assert "already replaced" in again.skip_reason.skip_message
