"""``qtis features``: the feature store - dbt models over market.bars, GARCH, labels."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import console, ready_url
from cli.render.features import FeatureProgress, print_build, print_feature_list
from transforms.build import build_features
from transforms.spec import default_spec
from warehouse.quality import missing_inputs

features_app = typer.Typer(
    help="The feature store: dbt models over market.bars, GARCH, labels.", no_args_is_help=True
)


@features_app.command("build")
def features_build(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every row instead of only new bars")
    ] = False,
    select: Annotated[str | None, typer.Option(help="dbt selection, e.g. 'bar_features+'")] = None,
) -> None:
    """GARCH volatility, then dbt build (models + tests) - what the Dagster assets run."""
    url = ready_url()
    with FeatureProgress(console) as progress:
        report = build_features(url, progress, full_refresh=full_refresh, select=select)
    print_build(console, url, report)
    if not report.dbt.success:
        raise typer.Exit(1)


@features_app.command("list")
def features_list(
    universe: Annotated[
        bool,
        typer.Option(
            "--universe/--spec-only",
            help="Also show the stored symbols that lack inputs (needs the database)",
        ),
    ] = True,
) -> None:
    """Every feature column of features.bar_features, from transforms/feature_spec.yml, with the
    bar inputs it reads; and the stored symbols without some inputs (features null for them)."""
    gaps = missing_inputs(ready_url()) if universe else None
    print_feature_list(console, default_spec(), gaps)
