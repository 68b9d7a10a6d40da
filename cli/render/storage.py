"""``qtis db status``: how market.bars is stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from cli.render.format import size
from warehouse.storage import StorageReport


def _span(value: timedelta | None) -> str:
    if value is None:
        return "-"
    days = value / timedelta(days=1)
    if days >= 1:
        return f"{days:g} days"
    return f"{value / timedelta(hours=1):g} hours"


def _when(value: datetime | None) -> str:
    return "never" if value is None else f"{value:%Y-%m-%d %H:%M %Z}".strip()


def render_storage(console: Console, report: StorageReport) -> None:
    console.print(f"market.bars storage: {report.kind}")
    if report.kind == "partitioned":
        first, last = report.first_month, report.last_month
        months = f", {first:%Y-%m} .. {last:%Y-%m}" if first and last else ""
        console.print(
            f"  partitions: {report.partitions} monthly{months}; {size(report.total_bytes)}"
        )
    if report.kind != "timescaledb":
        return
    console.print(
        f"  chunks: {report.chunks} ({report.compressed_chunks} compressed), "
        f"interval {_span(report.chunk_interval)}; {size(report.total_bytes)}"
    )
    ratio = report.compression_ratio
    if ratio is not None:
        console.print(
            f"  compression: {size(report.before_bytes)} -> {size(report.after_bytes)} "
            f"({ratio:.1f}x) in the compressed chunks"
        )
    policy = report.compress_after
    console.print(
        f"  policy: compress chunks older than {_span(policy)}" if policy else "  policy: none"
    )
    for r in report.rollups:
        console.print(
            f"  {r.relation} ({r.zone}): materialized up to {_when(r.materialized_to)}, "
            f"refreshed {_when(r.refreshed_at)}, every {_span(r.every)}, "
            f"next {_when(r.next_refresh)}",
            soft_wrap=True,
        )
