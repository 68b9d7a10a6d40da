"""Promotion as a Dagster asset: after training, the new versions face the gates; the decision
for each, with every gate's number, is asset metadata here and a row of ``mlops.promotions``."""

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset

from orchestration.resources import WarehouseResource
from registry.aliases import promote
from registry.promotions import status
from serving.probe import serving_probe
from training.families import FAMILIES
from training.settings import PromotionSettings


class PromotionConfig(Config):
    """Overrides of the QTIS_PROMOTION_* settings for one run (unset: the settings')."""

    significance: float | None = None  # one-sided level of the paired test against the champion
    min_deflated_sharpe: float | None = None
    latency_budget_ms: float | None = None


def decisions_markdown(decisions) -> str:
    lines = ["| model | decision | gate | passed | value | threshold | detail |", "|" + "---|" * 7]
    for d in decisions:
        for g in d.gates:
            value = "" if g.value is None else f"{g.value:.4g}"
            limit = "" if g.threshold is None else f"{g.threshold:g}"
            passed = {True: "yes", False: "**no**", None: "n/a"}[g.passed]
            lines.append(
                f"| {d.model} v{d.version} | {d.decision} | {g.name} | {passed} | {value} "
                f"| {limit} | {g.detail} |"
            )
    return "\n".join(lines)


@asset(
    group_name="promotion",
    deps=[AssetKey("ensemble_model"), *(AssetKey(f"{f}_model") for f in FAMILIES)],
    description="Champion/challenger gates on the newly trained versions; moves @champion "
    "only when every gate passes",
)
def promotion(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: PromotionConfig
) -> MaterializeResult:
    url, tracking = warehouse.url(), warehouse.tracking()
    settings = PromotionSettings(**{k: v for k, v in config.model_dump().items() if v is not None})
    probe = serving_probe(url, settings.latency_samples, tracking=tracking)
    decisions = promote(url, probe, settings, tracking=tracking)
    for d in decisions:
        context.log.info(f"{d.model} v{d.version}: {d.decision} ({d.reason})")
    now = status(url, limit=0, tracking=tracking)
    champion, challenger = now["champion"], now["challenger"]
    metadata = {
        "champion": f"{champion[0]} v{champion[1]}" if champion else "none",
        "challenger": f"{challenger[0]} v{challenger[1]}" if challenger else "none",
        "decisions": MetadataValue.md(decisions_markdown(decisions) or "no new versions"),
    }
    for d in decisions:
        key = d.model.removeprefix("qtis-")
        metadata[f"{key}_decision"] = d.decision
        for g in d.gates:
            if g.value is not None:
                metadata[f"{key}_{g.name}"] = float(g.value)
    return MaterializeResult(metadata=metadata)
