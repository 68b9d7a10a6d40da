"""Market-data assets: thin wrappers around ``warehouse.ingest``.

``raw_bars`` is partitioned by day (the session's date, New York): a partitioned run loads only
that day's bars from its source (the scheduled daily pull); a run without a partition loads
everything the source has, as the demo and `qtis ingest` do."""

from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from orchestration.resources import WarehouseResource
from orchestration.sessions import stale_in_session
from orchestration.settings import DagsterSettings
from warehouse import quality
from warehouse.ingest import ingest
from warehouse.providers import make_provider
from warehouse.providers.window import Window

# one partition per day from before the bundled sample; end_offset 1: today's partition exists
# before the day is over (the pull runs at the close)
DAYS = DailyPartitionsDefinition(start_date="2000-01-01", timezone="America/New_York", end_offset=1)


class RawBarsConfig(Config):
    source: str = Field(
        default="bundled", description="bundled | csv | parquet | synthetic | yfinance"
    )
    path: str | None = Field(default=None, description="File or directory for csv/parquet")
    symbols: list[str] = Field(default_factory=list, description="Subset of symbols; empty = all")
    column_map: dict[str, str] = Field(default_factory=dict, description="File header -> column")
    layout: str = Field(
        default="auto",
        description="csv/parquet: long, wide (a date column, one column of closes per symbol) "
        "or auto",
    )
    n_symbols: int = Field(default=20, description="synthetic: number of symbols")
    n_bars: int = Field(default=1000, description="synthetic: bars per symbol")
    freq: str = Field(default="1D", description="synthetic: bar length, e.g. 1D or 5min")
    seed: int = Field(default=7, description="synthetic: random seed")


@asset(group_name="market", kinds={"postgres", "python"}, partitions_def=DAYS)
def raw_bars(
    context: AssetExecutionContext, config: RawBarsConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Validated bars (OHLCV, or close-only from a price panel) in ``market.bars``; bad rows
    in ``market.bars_quarantine``. A partition: that day's bars only."""
    synthetic = {
        "n_symbols": config.n_symbols,
        "n_bars": config.n_bars,
        "freq": config.freq,
        "seed": config.seed,
    }
    provider = make_provider(
        config.source, config.path, config.column_map, synthetic, layout=config.layout
    )
    if context.has_partition_key:
        provider = Window.day(provider, date.fromisoformat(context.partition_key))
    report = ingest(
        provider,
        warehouse.url(),
        warehouse.settings(),
        config.symbols or None,
        progress=context.log.info,
    )
    return MaterializeResult(
        metadata={
            "source": report.source,
            "origin": report.origin,
            "symbols": MetadataValue.json(report.symbols),
            "rows_in": report.rows_in,
            "loaded": report.loaded,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "quarantined": report.quarantined,
            "quarantine_reasons": MetadataValue.json(report.quarantine_reasons),
            "flags": MetadataValue.json(report.flags),
            "first_ts": str(report.first_ts),
            "last_ts": str(report.last_ts),
            "ingest_run_id": report.run_id,
            "table": "market.bars",
        }
    )


@asset_check(asset=raw_bars, description="Every symbol of the last ingest has bars in the table.")
def raw_bars_row_count(warehouse: WarehouseResource) -> AssetCheckResult:
    run = quality.last_run(warehouse.url())
    if run is None:
        return AssetCheckResult(passed=False, metadata={"reason": "no ingest run recorded"})
    counts = quality.bars_per_symbol(warehouse.url(), run.symbols)
    empty = [s for s in run.symbols if counts.get(s, 0) == 0]
    return AssetCheckResult(
        passed=bool(run.symbols) and not empty,
        metadata={
            "bars": sum(counts.values()),
            "symbols": len(counts),
            "empty_symbols": empty,
            "per_symbol": MetadataValue.json(counts),
        },
    )


@asset_check(asset=raw_bars, description="Share of quarantined rows in the last ingest is small.")
def raw_bars_quarantine_ratio(warehouse: WarehouseResource) -> AssetCheckResult:
    limit = warehouse.settings().max_quarantine_ratio
    run = quality.last_run(warehouse.url())
    if run is None:
        return AssetCheckResult(passed=False, metadata={"reason": "no ingest run recorded"})
    return AssetCheckResult(
        passed=run.quarantine_ratio <= limit,
        metadata={
            "ratio": run.quarantine_ratio,
            "limit (QTIS_MAX_QUARANTINE_RATIO)": limit,
            "quarantined": run.quarantined,
            "rows_in": run.rows_in,
        },
    )


@asset_check(asset=raw_bars, description="The newest bar is recent (warns on stale data).")
def raw_bars_freshness(warehouse: WarehouseResource) -> AssetCheckResult:
    limit = warehouse.settings().freshness_max_age_hours
    newest, age = quality.newest_bar_age_hours(warehouse.url())
    return AssetCheckResult(
        passed=age is not None and age <= limit,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "newest_bar": str(newest),
            "age_hours": round(age or -1, 1),
            "limit_hours (QTIS_FRESHNESS_MAX_AGE_HOURS)": limit,
        },
    )


raw_bars_checks = [raw_bars_row_count, raw_bars_quarantine_ratio, raw_bars_freshness]


@asset_check(
    asset=raw_bars,
    description="While XNYS is open, the newest bar in market.bars is minutes old (intraday,"
    " the stream writes bars; bars_freshness_schedule runs this check).",
)
def raw_bars_intraday_freshness(warehouse: WarehouseResource) -> AssetCheckResult:
    limit = DagsterSettings().intraday_stale_minutes
    newest, _ = quality.newest_bar_age_hours(warehouse.url())
    stale = stale_in_session(newest, datetime.now(UTC), limit)
    return AssetCheckResult(
        passed=stale is None,
        metadata={
            "newest_bar": str(newest),
            "stale": stale or "no",
            "limit_minutes (QTIS_DAGSTER_INTRADAY_STALE_MINUTES)": limit,
        },
    )
