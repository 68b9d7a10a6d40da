"""``qtis monitor``: drift of the champion's inputs, forecasts, accuracy and attributions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from orchestration.cli_common import console, fail, num, pct, ready_url

monitor_app = typer.Typer(help="Drift: is the champion still looking at its market?",
                          no_args_is_help=True)  # fmt: skip


@monitor_app.command()
def drift(
    current_bars: Annotated[
        int | None, typer.Option(help="recent bars compared with training; QTIS_DRIFT_*")
    ] = None,
    method: Annotated[str | None, typer.Option(help="Evidently test: psi, ks, wasserstein")] = None,
    threshold: Annotated[float | None, typer.Option(help="of the test (PSI: 0.2)")] = None,
    json_out: Annotated[Path | None, typer.Option(help="write the summary and measures")] = None,
) -> None:
    """Compare the recent bars with the champion's training period (data, forecasts, accuracy
    once labels are in, SHAP ranking); an HTML report and rows in mlops.drift_results."""
    from monitoring.drift import DriftSettings, check_drift
    from serving.errors import NoChampion

    given = {"current_bars": current_bars, "method": method, "threshold": threshold}
    try:
        settings = DriftSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"invalid drift settings: {exc.errors()[0]['msg']}") from exc
    try:
        with console.status("drift: the champion's training period against the recent bars"):
            report = check_drift(ready_url(), settings=settings)
    except (NoChampion, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    print_drift(report)
    if json_out is not None:
        from dataclasses import asdict

        json_out.parent.mkdir(parents=True, exist_ok=True)
        body = report.summary() | {"measures": [asdict(m) for m in report.measures]}
        json_out.write_text(json.dumps(body, indent=1, default=str))
        console.print(f"wrote {json_out}", highlight=False, soft_wrap=True)


@monitor_app.command()
def replay(
    since: Annotated[datetime, typer.Option(help="check as of every bar after this date")],
    until: Annotated[datetime | None, typer.Option(help="through this date (default: all)")] = None,
    every: Annotated[int, typer.Option(min=1, help="every Nth bar")] = 1,
    current_bars: Annotated[int | None, typer.Option(help="recent bars per check")] = None,
) -> None:
    """What the monitor would have said as of each past bar (only the bars and outcomes known by
    then): one stored run per bar, an Evidently page for those that drifted and the last."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from monitoring.drift import DriftSettings
    from monitoring.replay import replay as run_replay
    from serving.errors import NoChampion

    try:
        given = {} if current_bars is None else {"current_bars": current_bars}
        settings = DriftSettings(**given)
    except ValidationError as exc:
        raise fail(f"invalid drift settings: {exc.errors()[0]['msg']}") from exc
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("drift as of each bar", total=None)

            def step(done: int, total: int, report) -> None:
                text = f"drift as of {report.current[1]:%Y-%m-%d}"
                progress.update(task, completed=done, total=total, description=text)

            found = run_replay(ready_url(), _utc(since), _utc(until) if until else None, every,
                               settings=settings, progress=step)  # fmt: skip
    except (NoChampion, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    alarms = found.alarms()
    title = f"{len(found.reports)} checks, {len(alarms)} calling for a retrain"
    table = Table("as of", "data score", "data share", "forecast score", "horizons",
                  "recent IC", "report", title=title)  # fmt: skip
    for r in alarms[:20]:
        table.add_row(f"{r.current[1]:%Y-%m-%d}", num(r.value("data", "score")),
                      pct(r.value("data", "share_drifted")), num(r.value("prediction", "score")),
                      f"{r.value('prediction', 'horizons_drifted') or 0:.0f}",
                      num(r.value("performance", "ic")), str(r.path or "-"))  # fmt: skip
    console.print(table)
    first = found.first_alarm()
    console.print(f"first alarm: {first.current[1]:%Y-%m-%d}" if first else "no alarm",
                  highlight=False)  # fmt: skip


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
