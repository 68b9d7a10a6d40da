"""Data-quality and summary queries over the warehouse (used by asset checks and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from warehouse.db import connect
from warehouse.validation import OPTIONAL_NUMBERS


@dataclass(frozen=True)
class LastRun:
    id: int
    source: str
    symbols: list[str]
    rows_in: int
    loaded: int
    quarantined: int
    finished_at: datetime

    @property
    def quarantine_ratio(self) -> float:
        return self.quarantined / self.rows_in if self.rows_in else 0.0


@dataclass(frozen=True)
class WarehouseSummary:
    symbols: int
    bars: int
    first_ts: datetime | None
    last_ts: datetime | None
    quarantined: int
    flags: dict[str, int]
    bars_per_symbol: dict[str, int]


def last_run(url: str) -> LastRun | None:
    with connect(url) as conn:
        row = conn.execute(
            "select id, source, symbols, rows_in, loaded, quarantined, finished_at "
            "from market.ingest_runs order by id desc limit 1"
        ).fetchone()
    return LastRun(*row) if row else None


def bars_per_symbol(url: str, symbols: list[str] | None = None) -> dict[str, int]:
    with connect(url) as conn:
        rows = conn.execute(
            "select symbol, count(*) from market.bars "
            "where %(all)s or symbol = any(%(symbols)s) group by symbol order by symbol",
            {"all": not symbols, "symbols": symbols or []},
        ).fetchall()
    return dict(rows)


def newest_bar_age_hours(url: str) -> tuple[datetime | None, float | None]:
    with connect(url) as conn:
        newest = conn.execute("select max(ts) from market.bars").fetchone()[0]
    if newest is None:
        return None, None
    return newest, (datetime.now(UTC) - newest).total_seconds() / 3600


def summary(url: str) -> WarehouseSummary:
    with connect(url) as conn:
        bars, first, last = conn.execute(
            "select count(*), min(ts), max(ts) from market.bars"
        ).fetchone()
        quarantined = conn.execute("select count(*) from market.bars_quarantine").fetchone()[0]
        flags = dict(
            conn.execute("select flag, count(*) from market.bar_flags group by flag").fetchall()
        )
    per_symbol = bars_per_symbol(url)
    return WarehouseSummary(len(per_symbol), bars, first, last, quarantined, flags, per_symbol)


@dataclass(frozen=True)
class MissingInputs:
    """A symbol whose bars lack some of open, high, low or volume (a close-only source)."""

    symbol: str
    bars: int
    missing: dict[str, int]  # column -> bars without it (only columns some bar lacks)

    @property
    def lacks_all(self) -> list[str]:
        """The columns none of its bars has."""
        return [c for c, n in self.missing.items() if n == self.bars]


def missing_inputs(url: str) -> list[MissingInputs]:
    """Symbols with bars that lack an optional input, by symbol; the features that read it are
    null there (transforms.spec.FeatureSpec.columns_needing)."""
    with connect(url) as conn:
        rows = conn.execute(
            f"""
            select symbol, count(*), {", ".join(f"count(*) - count({c})" for c in OPTIONAL_NUMBERS)}
            from market.bars group by symbol
            having count(*) > least({", ".join(f"count({c})" for c in OPTIONAL_NUMBERS)})
            order by symbol
            """
        ).fetchall()
    return [
        MissingInputs(s, n, {c: m for c, m in zip(OPTIONAL_NUMBERS, gaps, strict=True) if m})
        for s, n, *gaps in rows
    ]
