"""What `qtis ingest` loaded, quarantined and flagged."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_quarantine(console: Console, reasons: dict[str, int], table_name: str) -> None:
    """Rows set aside per reason (nothing when none were), titled by the quarantine table."""
    if reasons:
        table = Table("quarantine reason", "rows", title=table_name)
        for reason, count in reasons.items():
            table.add_row(reason, f"{count:,}")
        console.print(table)


def print_ingest(console: Console, report) -> None:
    """``report``: a ``warehouse.ingest.IngestReport``."""
    console.print(
        f"[bold]{report.source}[/] ({report.origin}): {report.rows_in:,} rows read, "
        f"{report.loaded:,} loaded ({report.inserted:,} new, {report.updated:,} updated, "
        f"{report.unchanged:,} unchanged), [{'red' if report.quarantined else 'green'}]"
        f"{report.quarantined:,} quarantined[/]"
    )
    print_quarantine(console, report.quarantine_reasons, "market.bars_quarantine")
    if report.flags:
        console.print(
            "flagged (loaded, see market.bar_flags): "
            + ", ".join(f"{k} {v}" for k, v in report.flags.items())
        )
