"""Drift as a Dagster asset: after features are built, the champion's training period against
the recent bars (monitoring/drift.py). The HTML report is linked from the materialization and
the numbers go to mlops.drift_results, where sensors read them."""

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset

from monitoring.drift import check_drift, drift_reports
from monitoring.drift_results import KINDS
from monitoring.settings import DriftSettings
from orchestration.resources import WarehouseResource
from serving.predictor import Predictor
from serving.settings import ServingSettings


class DriftConfig(Config):
    """Overrides of the QTIS_DRIFT_* settings for one run (unset: the settings'), read when
    the asset runs, not when the code location loads."""

    current_bars: int | None = None
    method: str | None = None
    threshold: float | None = None


@asset(
    group_name="monitoring",
    deps=[AssetKey(["features", "training_set"]), AssetKey("promotion")],
    description="Data, prediction, performance and SHAP-attribution drift of the champion: "
    "Evidently report and mlops.drift_results rows",
)
def drift_report(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: DriftConfig
) -> MaterializeResult:
    settings = DriftSettings(**{k: v for k, v in config.model_dump().items() if v is not None})
    url, tracking = warehouse.url(), warehouse.tracking()
    champion = Predictor(url, ServingSettings(), tracking=tracking).champion
    reports = drift_reports(warehouse.settings().home)
    report = check_drift(url, settings, reports, champion, tracking=tracking)
    for note in report.notes:
        context.log.info(note)
    metadata = {
        "report": MetadataValue.path(str(report.path)),
        "drift_run_id": report.run_id,
        "model": f"{report.model} v{report.version}",
        "current": f"{report.current[0]:%Y-%m-%d} to {report.current[1]:%Y-%m-%d}",
        "data_drift_share": float(report.value("data", "share_drifted") or 0.0),
    }
    for kind in ("data", "prediction"):
        if report.value(kind, "score") is not None:
            metadata[f"{kind}_drift_score"] = float(report.value(kind, "score"))
    metadata |= {f"{kind}_drifted": report.drifted(kind) for kind in KINDS}
    ic = report.value("performance", "ic")
    if ic is not None:
        metadata["recent_ic"] = float(ic)
    return MaterializeResult(metadata=metadata)
