"""What `qtis ingest` loaded, quarantined and flagged."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_ingest(console: Console, report) -> None:
    """``report``: a ``warehouse.ingest.IngestReport``."""
    console.print(
        f"[bold]{report.source}[/] ({report.origin}): {report.rows_in:,} rows read, "
        f"{report.loaded:,} loaded ({report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged), [{'red' if report.quarantined else 'green'}]"
        f"{report.quarantined:,} quarantined[/]"
    )
    if report.quarantine_reasons:
        table = Table("quarantine reason", "rows", title="market.bars_quarantine")
        for reason, count in report.quarantine_reasons.items():
            table.add_row(reason, f"{count:,}")
        console.print(table)
    if report.flags:
        console.print(
            "flagged (loaded, see market.bar_flags): "
            + ", ".join(f"{k} {v}" for k, v in report.flags.items())
        )
