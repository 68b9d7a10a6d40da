"""``qtis monitor``: drift of the champion's inputs, forecasts, accuracy and attributions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.common import console, fail, ready_url, write_json
from cli.render.drift import print_drift, print_replay
from monitoring.drift import check_drift, drift_reports
from monitoring.replay import replay as run_replay
from monitoring.settings import DriftSettings
from serving.errors import NoChampion
from serving.predictor import Predictor
from serving.settings import ServingSettings
from training.settings import TrackingSettings
from warehouse.settings import get_settings

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
    given = {"current_bars": current_bars, "method": method, "threshold": threshold}
    try:
        settings = DriftSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"invalid drift settings: {exc.errors()[0]['msg']}") from exc
    try:
        with console.status("drift: the champion's training period against the recent bars"):
            url, tracking = ready_url(), TrackingSettings()
            champion = Predictor(url, ServingSettings(), tracking=tracking).champion
            reports = drift_reports(get_settings().home)
            report = check_drift(url, settings, reports, champion, tracking=tracking)
    except (NoChampion, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    print_drift(report)
    if json_out is not None:
        body = report.summary() | {"measures": [asdict(m) for m in report.measures]}
        write_json(json_out, body, indent=1, highlight=False, soft_wrap=True)


@monitor_app.command()
def replay(
    since: Annotated[datetime, typer.Option(help="check as of every bar after this date")],
    until: Annotated[datetime | None, typer.Option(help="through this date (default: all)")] = None,
    every: Annotated[int, typer.Option(min=1, help="every Nth bar")] = 1,
    current_bars: Annotated[int | None, typer.Option(help="recent bars per check")] = None,
) -> None:
    """What the monitor would have said as of each past bar (only the bars and outcomes known by
    then): one stored run per bar, an Evidently page for those that drifted and the last."""
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

            url, tracking = ready_url(), TrackingSettings()
            found = run_replay(url, _utc(since), settings, drift_reports(get_settings().home),
                               Predictor(url, ServingSettings(), tracking=tracking).champion,
                               _utc(until) if until else None, every, progress=step,
                               tracking=tracking)  # fmt: skip
    except (NoChampion, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    print_replay(found)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
