"""Dagster's side of monitoring, against real tables and a registered champion: the drift_report
asset's materialization, the drift sensor (a retrain request, a roll-back recorded in
mlops.promotions, no second request for the same run or within the cooldown), the shadow sensor
replacing the champion by a challenger that traded better, and a failed run as a critical alert.
The drift asset runs first: the sensors move the champion."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    build_sensor_context,
    job,
    materialize,
    op,
)

from monitoring.drift_results import save
from orchestration.assets.monitoring import drift_report
from orchestration.definitions import defs
from orchestration.resources import WarehouseResource
from orchestration.sensors import failed_run_alerts
from quant.conventions import Conventions
from registry.aliases import force
from registry.model_registry import ModelRegistry
from registry.promotions import history, status
from serving.probe import serving_probe
from tests.support.drift import report
from tests.support.promotion import relaxed
from trading_runtime.ab import compare
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import report as stream_report
from trading_runtime.runs import run
from training.runner import TrainConfig, run_training
from training.settings import TrackingSettings


@pytest.mark.slow
def test_a_drift_run_reports_stores_and_materializes(champion, monkeypatch):
    url, env, _ = champion
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = materialize([drift_report], resources={"warehouse": WarehouseResource()})
    assert result.success
    meta = result.asset_materializations_for_node("drift_report")[0].metadata
    path = meta["report"].value
    page = Path(path).read_text()
    assert path.endswith(".html") and "Drifted Columns" in page and "rsi_14" in page
    assert meta["model"].value == "qtis-xgboost v1"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select kind, measure, value, threshold, drifted, report_path, reference_end,"
            " current_start from mlops.drift_results where run_id = %s",
            (meta["drift_run_id"].value,),
        ).fetchall()
    kinds = {r[0] for r in rows}
    assert {"data", "prediction", "performance", "attribution"} <= kinds
    share = next(r for r in rows if r[1] == "share_drifted")
    tested = [r for r in rows if r[0] == "data" and r[1] not in ("share_drifted", "score")]
    assert share[2] == pytest.approx(sum(r[4] for r in tested) / len(tested))
    assert share[4] == (share[2] >= share[3])
    # calibrated on the training period, the pooled score decides (for the forecasts too)
    score = {r[0]: r for r in rows if r[1] == "score"}
    assert set(score) == {"data", "prediction"}
    assert score["data"][4] == (score["data"][2] >= score["data"][3]) == meta["data_drifted"].value
    assert meta["data_drift_score"].value == pytest.approx(score["data"][2])
    assert "month" not in {r[1] for r in tested}  # calendar features are not tested by default
    assert all(r[5] == path for r in rows) and rows[0][6] < rows[0][7]  # training, then recent
    spearman = next(r for r in rows if r[1] == "spearman")
    assert -1 <= spearman[2] <= 1 and spearman[4] == (spearman[2] < 0.5)


@pytest.mark.slow
def test_the_sensor_requests_a_retrain_rolls_back_and_respects_its_cooldown(champion, tmp_path):
    url, env, _ = champion
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("QTIS_ALERT_LOG_FILE", str(tmp_path / "alerts.jsonl"))
        config = TrainConfig(models=("xgboost",), splits=2, xgb_estimators=20, explain_samples=0)
        tracking = TrackingSettings()
        run_training(url, config, symbols=["IBM", "MSFT"], tracking=tracking)  # version 2
        probe = serving_probe(url, tracking=tracking)
        force(url, "qtis-xgboost", "2", "sensor test", probe, relaxed(), tracking=tracking)
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


@pytest.mark.slow
def test_the_shadow_sensor_replaces_the_champion_by_a_challenger_that_traded_better(
    champion, tmp_path
):
    """A real stream: a live SMA cross and a shadow buy-and-hold on the bundled bars; the
    sensor waits while the paired test's p is above the level and replaces the champion by the
    @challenger once it is below, once per stream."""
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
        tracking = TrackingSettings()
        trained = run_training(url, train, symbols=["IBM", "MSFT"], tracking=tracking)
        info = trained.registered["xgboost"]
        challenger = (info["registered"], str(info["version"]))
        before = status(url, limit=0, tracking=tracking)["champion"]
        ModelRegistry(url, tracking).move_alias("challenger", *challenger)
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
        assert status(url, limit=0, tracking=tracking)["champion"] == before
        acted = tick(None, min(0.99, p * 1.5))
        assert status(url, limit=0, tracking=tracking)["champion"] == challenger
        assert status(url, limit=0, tracking=tracking)["challenger"] is None
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
