"""What the feature store holds: row counts and coverage, for the CLI, the demo and checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from transforms.spec import FeatureSpec, default_spec
from warehouse.db import connect

TABLES = (
    "bar_features",
    "series_features",
    "labels",
    "training_set",
    "garch_vol",
    "garch_fits",
    "bars_weekly",
    "bars_daily",
)


@dataclass(frozen=True)
class StoreSummary:
    features: int
    labels: int
    rows: dict[str, int]
    symbols: int
    first_ts: datetime | None
    last_ts: datetime | None


def summary(url: str, spec: FeatureSpec | None = None) -> StoreSummary:
    spec = spec or default_spec()
    rows = {}
    with connect(url) as conn:
        for table in TABLES:
            exists = conn.execute(
                "select to_regclass(%s) is not null", (f"features.{table}",)
            ).fetchone()[0]
            if exists:
                query = sql.SQL("select count(*) from features.{}").format(sql.Identifier(table))
                rows[table] = conn.execute(query).fetchone()[0]
        symbols, first_ts, last_ts = (
            conn.execute(
                "select count(distinct symbol), min(ts), max(ts) from features.bar_features"
            ).fetchone()
            if "bar_features" in rows
            else (0, None, None)
        )
    return StoreSummary(
        features=len(spec.columns()),
        labels=len(spec.label_columns()),
        rows=rows,
        symbols=symbols,
        first_ts=first_ts,
        last_ts=last_ts,
    )


def rewritten_history(url: str) -> list[str]:
    """Symbols whose bars at or before their last feature row changed in number since the build
    (a backfill, a deleted bar): incremental models only append, so these need a full refresh."""
    query = """
        select i.symbol
        from market.instruments i
        cross join lateral (
            select max(ts) as watermark, count(*) as n
            from features.bar_features f where f.symbol = i.symbol
        ) f
        where f.watermark is not null
          and f.n <> (
              select count(*) from market.bars b
              where b.symbol = i.symbol and b.ts <= f.watermark
          )
        order by 1
    """
    with connect(url) as conn:
        if conn.execute("select to_regclass('features.bar_features') is null").fetchone()[0]:
            return []
        return [row[0] for row in conn.execute(query)]


def series_stale(url: str, spec: FeatureSpec | None = None) -> bool:
    """With ``series.train``: a vintage of a spec series was ingested after the last build, so
    rows features.bar_features already holds may see different values now (a release dated in
    the past): the incremental bar_features would keep the old ones, a full refresh is due."""
    spec = spec or default_spec()
    if not spec.series.train or not spec.series.features:
        return False
    query = """
        select exists (
            select 1 from market.series s
            where s.series_id = any(%s)
              and s.ingested_at > (select coalesce(max(built_at), '-infinity')
                                   from features.series_releases)
        )
    """
    with connect(url) as conn:
        if conn.execute("select to_regclass('features.series_releases') is null").fetchone()[0]:
            return False  # never built: the first build is a full one
        return conn.execute(query, (list(spec.series.depths()),)).fetchone()[0]
