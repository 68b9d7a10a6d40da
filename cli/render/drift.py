"""Drift as tables: the verdict per kind of a check, and the alarms of a replay."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cli.common import console
from cli.render.format import num, pct


def print_drift(report, out: Console = console) -> None:
    """The verdict per kind, the most drifted features, and where the report is."""
    verdict = {True: "[red]drifted[/]", False: "[green]stable[/]"}
    table = Table("check", "measure", "value", "threshold", "verdict",
                  title=f"drift of {report.model} v{report.version}: "
                  f"{report.current[0]:%Y-%m-%d} to {report.current[1]:%Y-%m-%d} vs training "
                  f"{report.reference[0]:%Y-%m-%d} to {report.reference[1]:%Y-%m-%d}")  # fmt: skip
    headline = {("data", "score"): num, ("data", "share_drifted"): pct,
                ("prediction", "score"): num, ("prediction", "horizons_drifted"): "{:.0f}".format,
                ("performance", "ic"): num, ("performance", "error_ratio"): num,
                ("attribution", "spearman"): num}  # fmt: skip
    for m in report.measures:
        shown = headline.get((m.kind, m.measure))
        if shown is not None:
            threshold = "-" if m.threshold is None else shown(m.threshold)
            table.add_row(m.kind, m.measure, shown(m.value), threshold, verdict[m.drifted])
    for kind in ("performance", "attribution"):
        if not any(m.kind == kind for m in report.measures):
            table.add_row(kind, "-", "-", "-", "[dim]not measured[/]")
    out.print(table)
    features = sorted(
        (
            m
            for m in report.measures
            if m.kind == "data" and m.measure not in ("share_drifted", "score")
        ),
        key=lambda m: -(m.value or 0),
    )
    drifted = [f"{m.measure} {m.value:.2f}" for m in features if m.drifted]
    if drifted:
        out.print(f"drifted features ({len(drifted)}), most first: {', '.join(drifted[:8])}",
                  highlight=False)  # fmt: skip
    for note in report.notes:
        out.print(f"[dim]{note}[/]")
    out.print(f"drift report: {report.path}", soft_wrap=True, highlight=False)


def print_replay(found, out: Console = console) -> None:
    """The checks that called for a retrain (the first 20), then the first alarm."""
    alarms = found.alarms()
    title = f"{len(found.reports)} checks, {len(alarms)} calling for a retrain"
    table = Table("as of", "data score", "data share", "forecast score", "horizons",
                  "recent IC", "report", title=title)  # fmt: skip
    for r in alarms[:20]:
        table.add_row(f"{r.current[1]:%Y-%m-%d}", num(r.value("data", "score")),
                      pct(r.value("data", "share_drifted")), num(r.value("prediction", "score")),
                      f"{r.value('prediction', 'horizons_drifted') or 0:.0f}",
                      num(r.value("performance", "ic")), str(r.path or "-"))  # fmt: skip
    out.print(table)
    first = found.first_alarm()
    out.print(f"first alarm: {first.current[1]:%Y-%m-%d}" if first else "no alarm",
                  highlight=False)  # fmt: skip
