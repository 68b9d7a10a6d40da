"""The sensor that acts on drift: each new run in mlops.drift_results is read once; data or
prediction drift requests the ``retrain`` job (features -> tune -> train -> promotion gates),
at most once per cooldown; a champion whose recent accuracy decayed is rolled back to the one
before it (recorded in mlops.promotions; the serving process picks the alias up). Every verdict
is an alert (deduplicated) and the reason is on the tick in the Dagster UI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    sensor,
)

from monitoring.actions import decide, decide_shadow
from monitoring.alerts import AlertSink
from monitoring.drift_results import latest_run, load_report
from monitoring.settings import ActionSettings, AlertSettings
from orchestration.assets.features import feature_store, garch_vol
from orchestration.assets.promotion import promotion
from orchestration.assets.trading import reference_backtests
from orchestration.assets.training import training_assets
from orchestration.assets.tuning import tuning_assets
from orchestration.resources import WarehouseResource
from registry.aliases import replace_with_challenger, rollback
from serving.probe import serving_probe
from trading_runtime import runs
from trading_runtime.ab import NoShadow, compare
from trading_runtime.analytics.conventions import conventions as analytics_conventions
from trading_runtime.settings import RuntimeSettings
from training.families import FAMILIES
from training.settings import TrackingSettings
from warehouse.settings import WarehouseSettings


def retrain_selection(families: tuple[str, ...]) -> list[AssetKey] | None:
    """The retrain job's assets for some families only (None: the whole job)."""
    if not families:
        return None
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"QTIS_MONITOR_RETRAIN_FAMILIES: unknown {sorted(unknown)}; "
                         f"choose from {', '.join(FAMILIES)}")  # fmt: skip
    names = {f"{family}_{step}" for family in families for step in ("tuning", "model")}
    chosen = [a for a in (*tuning_assets, *training_assets) if a.key.to_user_string() in names]
    return [*garch_vol.keys, *feature_store.keys, *(a.key for a in chosen), promotion.key,
            reference_backtests.key]  # fmt: skip


def _stopped_sensor(
    name: str,
    act: Callable[[SensorEvaluationContext, str], SensorResult],
    interval: int,
    description: str,
    job=None,
) -> SensorDefinition:
    """A sensor that is off until switched on (in the UI or the daemon), whose tick is
    ``act(context, warehouse url)``: the decision stays plain Python, testable without Dagster."""

    @sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.STOPPED,
        description=description,
    )
    def evaluate(context: SensorEvaluationContext, warehouse: WarehouseResource):
        return act(context, warehouse.url())

    return evaluate


def drift_sensor_for(job) -> SensorDefinition:
    return _stopped_sensor(
        "drift_sensor",
        act_on_drift,
        300,
        "retrain on data/prediction drift (with a cooldown), roll the champion back on"
        " performance decay; reads mlops.drift_results",
        job,
    )


def alert_sink() -> AlertSink:
    """The sensors' alert sink: a sensor is an entry point, so it reads QTIS_ALERT_* and
    QTIS_HOME itself."""
    return AlertSink(AlertSettings(), WarehouseSettings().home)


def act_on_drift(context: SensorEvaluationContext, url: str) -> SensorResult:
    state = json.loads(context.cursor or "{}")
    run = latest_run(url)
    if run is None or run == state.get("run"):
        return SensorResult(skip_reason="no new drift run in mlops.drift_results")
    report = load_report(url, run)
    now = datetime.now(UTC)
    last = state.get("retrain_at")
    settings = ActionSettings()
    verdicts = decide(report, datetime.fromisoformat(last) if last else None, now, settings)
    sink, requests, said = alert_sink(), [], []
    for verdict in verdicts:
        if verdict.action == "demote":
            try:
                tracking = TrackingSettings()
                probe = serving_probe(url, tracking=tracking)
                done = rollback(url, probe, verdict.reason, actor="drift_sensor", tracking=tracking)
                said.append(f"demoted: {done.reason}; champion {done.model} v{done.version}")
            except ValueError as exc:  # the first champion: nothing to go back to
                said.append(f"{verdict.reason}; not demoted: {exc}")
        elif verdict.action == "retrain":
            tags = {"qtis/reason": verdict.reason}
            selection = retrain_selection(settings.retrain_families)
            requests.append(RunRequest(run_key=f"drift-{run}", tags=tags,
                                       asset_selection=selection))  # fmt: skip
            last = now.isoformat()
            said.append(f"retrain requested: {verdict.reason}")
        else:
            said.append(verdict.reason)
        sink.send(f"{verdict.action}:{report.model}", "warning", said[-1])
    cursor = json.dumps({"run": run, "retrain_at": last})
    if not requests:
        why = "; ".join(said) or f"drift run {run}: nothing drifted"
        return SensorResult(skip_reason=why, cursor=cursor)
    for line in said:
        context.log.info(line)
    return SensorResult(run_requests=requests, cursor=cursor)


def act_on_shadow(context: SensorEvaluationContext, url: str) -> SensorResult:
    """Once per stream: after a replacement its shadow book traded the old challenger, so it
    says nothing more about the new pair."""
    settings = ActionSettings()
    stream = settings.shadow_stream
    if not stream:
        return SensorResult(skip_reason="QTIS_MONITOR_SHADOW_STREAM is not set")
    state = json.loads(context.cursor or "{}")
    if stream in state.get("replaced", []):
        return SensorResult(skip_reason=f"stream {stream} already replaced its champion")
    try:
        conventions = analytics_conventions(periods_per_year=RuntimeSettings().bars_per_year)
        found = compare(runs.report(url, stream, conventions), conventions)
    except (LookupError, NoShadow, ValueError) as exc:
        return SensorResult(skip_reason=f"stream {stream}: {exc}")
    verdict = decide_shadow(stream, found.bars, found.p_shadow_better, settings)
    if verdict.action == "wait":
        return SensorResult(skip_reason=verdict.reason)
    try:
        tracking = TrackingSettings()
        probe = serving_probe(url, tracking=tracking)
        done = replace_with_challenger(
            url, probe, verdict.reason, actor="shadow_sensor", tracking=tracking
        )
        said = f"champion replaced: {done.model} v{done.version}; {verdict.reason}"
        state["replaced"] = [*state.get("replaced", []), stream]
    except ValueError as exc:
        said = f"{verdict.reason}; not replaced: {exc}"
    alert_sink().send(f"replace:{stream}", "warning", said)
    context.log.info(said)
    return SensorResult(skip_reason=said, cursor=json.dumps(state))


shadow_sensor = _stopped_sensor(
    "shadow_sensor",
    act_on_shadow,
    900,
    "replace the champion by the challenger when the challenger's shadow book traded"
    " significantly better (QTIS_MONITOR_SHADOW_*)",
)


@run_failure_sensor(
    name="failed_run_alerts",
    default_status=DefaultSensorStatus.STOPPED,
    description="a failed run of any job is an alert (QTIS_ALERT_*)",
)
def failed_run_alerts(context: RunFailureSensorContext) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "failed"
    text = f"Dagster run {run.run_id[:8]} of {run.job_name} failed: {message}"
    alert_sink().send(f"run_failed:{run.job_name}", "critical", text)
