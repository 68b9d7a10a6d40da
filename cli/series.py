"""``qtis series``: point-in-time alternative data (macro, sentiment, ...) in market.series."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.common import console, fail, ready_url
from cli.render.series import print_series_ingest, print_series_list
from warehouse.providers.base import DataSourceError
from warehouse.providers.series_files import DEFAULT_RELEASE_TZ, macro_sample, read_fred_csv
from warehouse.series import load_series, series_summary

series_app = typer.Typer(
    help="Point-in-time series (macro, sentiment, ...): values with their release times.",
    no_args_is_help=True,
)


class Sample(StrEnum):
    macro = "macro"


@series_app.command("ingest")
def series_ingest(
    file: Annotated[
        Path | None,
        typer.Argument(help="FRED/ALFRED CSV (DATE or observation_date, a value column)"),
    ] = None,
    sample: Annotated[
        Sample | None,
        typer.Option(help="a bundled sample instead of a file: statsmodels' US macro"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="series id (default: the value column's header)")
    ] = None,
    release_lag: Annotated[
        int | None,
        typer.Option(
            help="days from the end of each period to its publication (files without"
            " realtime_start); known from the start of the next day"
        ),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            help="each date's period as a pandas offset (D, W-FRI, MS, QS; default: inferred)"
        ),
    ] = None,
    release_tz: Annotated[
        str, typer.Option(help="time zone of release dates (and of observation dates)")
    ] = DEFAULT_RELEASE_TZ,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Load a series file or the sample into market.series (re-running changes nothing)."""
    if (file is None) == (sample is None):
        raise fail("give a FILE or --sample macro (one of them)")
    try:
        raw = (
            macro_sample(release_tz)
            if sample
            else read_fred_csv(file, name, release_lag, period, release_tz)
        )
        report = load_series(ready_url(), raw)
    except DataSourceError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(asdict(report) | {"unchanged": report.unchanged}, indent=2, default=str))
        return
    print_series_ingest(console, report)


@series_app.command("list")
def series_list() -> None:
    """Every stored series: observations, vintages, and the span of its releases."""
    print_series_list(console, series_summary(ready_url()))
