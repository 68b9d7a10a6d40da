"""Feature-store assets: the dbt project (one asset per model, dbt tests as asset checks) and the
GARCH volatility asset that dbt joins as a source. Bodies are thin calls into ``transforms``."""

import os
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    asset,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.assets.ingest import raw_bars
from orchestration.resources import WarehouseResource
from transforms.dbt_runner import dbt_env, dbt_vars, ensure_manifest
from transforms.garch import update_garch
from transforms.store import rewritten_history, series_stale

# market.bars is what raw_bars writes; other sources keep their own keys (instruments are
# registered by the same asset but dagster-dbt needs one key per source).
SOURCE_ASSETS = {
    ("market", "bars"): AssetKey("raw_bars"),
    ("garch", "garch_vol"): AssetKey("garch_vol"),
}


class QtisDbtTranslator(DagsterDbtTranslator):
    """dbt sources map onto the assets that write them; every model is in group ``features``."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            key = (dbt_resource_props["source_name"], dbt_resource_props["name"])
            return SOURCE_ASSETS.get(key, AssetKey(list(key)))
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"


class FeatureBuildConfig(Config):
    full_refresh: bool = False


@dbt_assets(
    manifest=ensure_manifest(),
    dagster_dbt_translator=QtisDbtTranslator(),
    name="feature_store",
)
def feature_store(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: FeatureBuildConfig,
):
    """dbt build of the selected models (incremental unless full_refresh), tests included."""
    url = warehouse.url()
    os.environ.update(dbt_env(url))
    args = ["build", "--vars", dbt_vars()]
    rewritten = [] if config.full_refresh else rewritten_history(url)
    if rewritten:
        context.log.warning(f"history changed for {rewritten}: running a full refresh")
    stale = not (config.full_refresh or rewritten) and series_stale(url)
    if stale:
        context.log.warning("series were ingested since the last build: running a full refresh")
    if config.full_refresh or rewritten or stale:
        args.append("--full-refresh")
    yield from dbt.cli(args, context=context).stream()


class GarchConfig(Config):
    full_refresh: bool = False


@asset(group_name="features", deps=[raw_bars])
def garch_vol(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: GarchConfig
) -> MaterializeResult:
    """GARCH(1,1) volatility per bar (features.garch_vol): rolling refits, no look-ahead."""
    url = warehouse.url()
    rewritten = [] if config.full_refresh else rewritten_history(url)
    report = update_garch(
        url, full_refresh=config.full_refresh or bool(rewritten), progress=context.log.debug
    )
    return MaterializeResult(
        metadata={
            "symbols": len(report.symbols),
            "fits": report.fits,
            "rows_written": report.rows_written,
            "skipped_symbols": ", ".join(report.skipped_symbols) or "none",
            "failed_fits": report.failed_fits,
            "seconds": round(report.seconds, 2),
        }
    )
