"""The demo's monitoring part: the ``drift_report`` asset on the champion, through Dagster, and
its verdicts as stored in mlops.drift_results."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from cli.render.drift import print_drift
from monitoring.actions import decide
from monitoring.drift_results import load_report
from monitoring.settings import ActionSettings
from orchestration.assets.monitoring import drift_report
from orchestration.materialize import run_assets
from orchestration.resources import WarehouseResource


def show_drift(console: Console, warehouse: WarehouseResource):
    """Returns the stored DriftReport (None when the check failed)."""
    with console.status("drift: the champion's training period against the latest bars"):
        result = run_assets(
            [drift_report], {"warehouse": warehouse}, log_level="ERROR", raise_on_error=False
        )
    if not result.success:
        console.print("[yellow]drift not checked[/]: see the drift_report run in the Dagster UI")
        return None
    meta = result.asset_materializations_for_node("drift_report")[0].metadata
    report = load_report(warehouse.url(), meta["drift_run_id"].value)
    print_drift(report, console)
    verdicts = decide(report, None, datetime.now(UTC), ActionSettings())
    said = "; ".join(f"{v.action}: {v.reason}" for v in verdicts) or "nothing to do"
    console.print(f"  drift_sensor would act on it (when turned on): {said}", highlight=False)
    return report
