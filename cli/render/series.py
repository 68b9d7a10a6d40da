"""What `qtis series` loaded and holds."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from cli.render.ingest import print_quarantine
from warehouse.series import SeriesReport, SeriesSummary


def print_series_ingest(console: Console, report: SeriesReport) -> None:
    shown = ", ".join(report.series[:8]) + (" ..." if len(report.series) > 8 else "")
    console.print(
        f"[bold]{report.source}[/] ({report.origin}): {len(report.series)} series ({shown}), "
        f"{report.rows:,} values loaded ({report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged), {report.missing:,} without a value skipped, "
        f"[{'red' if report.quarantined else 'green'}]{report.quarantined:,} quarantined[/]"
    )
    if report.first_release is not None:
        console.print(
            f"releases {report.first_release:%Y-%m-%d %H:%M} .. "
            f"{report.last_release:%Y-%m-%d %H:%M} UTC"
        )
    print_quarantine(console, report.reasons, "market.series_quarantine")


def print_series_list(console: Console, rows: Sequence[SeriesSummary]) -> None:
    if not rows:
        console.print("market.series is empty: `qtis series ingest --sample macro` or a FRED CSV")
        return
    table = Table(
        "series", "observations", "vintages", "observed", "released", "source",
        title="market.series",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            r.series_id,
            f"{r.observations:,}",
            f"{r.vintages:,}",
            f"{r.first_observed:%Y-%m-%d} .. {r.last_observed:%Y-%m-%d}",
            f"{r.first_release:%Y-%m-%d} .. {r.last_release:%Y-%m-%d}",
            r.source,
        )
    console.print(table)
