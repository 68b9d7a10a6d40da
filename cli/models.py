"""``qtis models`` (champion/challenger status, gated promotion, rollback, the ensemble's
weights over time) and ``qtis serve``."""

from __future__ import annotations

import os
import subprocess
from typing import Annotated

import typer
from pydantic import ValidationError

from cli.common import console, fail, ready_url
from cli.render.promotion import print_decisions
from cli.render.training import print_weights
from registry import promotions
from serving.auth import OpenExposure, check_exposure
from serving.launch import service_command, service_env
from serving.probe import serving_probe
from serving.settings import ServingSettings
from training.settings import TrackingSettings

models_app = typer.Typer(
    help="Champion/challenger: promotion gates, status, rollback.", no_args_is_help=True
)


@models_app.command("status")
def models_status(
    limit: Annotated[int, typer.Option(help="latest decisions to show")] = 10,
) -> None:
    """Who holds @champion and @challenger, and the latest promotion decisions with their gates."""
    try:
        found = promotions.status(ready_url(), limit, tracking=TrackingSettings())
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    for alias in ("champion", "challenger"):
        holder = found[alias]
        console.print(f"@{alias}: " + (f"[bold]{holder[0]} v{holder[1]}[/]" if holder else "none"))
    rows = promotions.as_decisions(found["decisions"])
    if not rows:
        console.print("No promotion decision yet: train, then run `qtis models promote`.")
        return
    print_decisions("Latest decisions (mlops.promotions)", rows)


@models_app.command("promote")
def models_promote(
    model: Annotated[
        str | None, typer.Argument(help="registered name, e.g. qtis-xgboost (default: all new)")
    ] = None,
    version: Annotated[str | None, typer.Argument(help="version (default: latest)")] = None,
    force: Annotated[
        bool, typer.Option(help="make it champion whatever the statistical gates say")
    ] = False,
    reason: Annotated[str, typer.Option(help="why (required with --force)")] = "",
) -> None:
    """Judge versions against the champion and baselines; promote only through every gate.
    Without arguments: the latest version of each qtis-* model not yet decided on."""
    # deferred: mlflow (~1.2 s), and torch+lightning through registry.aliases and
    # training.tracking (~6 s measured), would load on every qtis command
    from mlflow.tracking import MlflowClient

    from registry import aliases  # deferred: torch+lightning, as above
    from training.promotion import PromotionSettings  # deferred: as above
    from training.tracking import configure  # deferred: torch+lightning, as above

    tracking = TrackingSettings()
    try:
        url = ready_url()
        probe, gates = serving_probe(url, tracking=tracking), PromotionSettings()
        candidates = None
        if model is not None:
            configure(url, tracking)
            if version is None:
                found = MlflowClient().search_model_versions(f"name='{model}'")
                if not found:
                    raise ValueError(f"{model} is not registered")
                version = str(max(int(v.version) for v in found))
            candidates = [(model, version)]
        with console.status("running the promotion gates"):
            if force:
                if candidates is None:
                    raise ValueError("--force needs a model (and version) to promote")
                decisions = [
                    aliases.force(url, *candidates[0], reason, probe, gates, tracking=tracking)
                ]
            else:
                decisions = aliases.promote(url, probe, gates, candidates, tracking=tracking)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    if not decisions:
        console.print("No new version to judge (every latest version has a decision).")
        return
    print_decisions("Promotion", [d.to_dict() for d in decisions])
    found = promotions.status(url, limit=0, tracking=tracking)
    console.print(
        "@champion: " + (f"{found['champion'][0]} v{found['champion'][1]}" if found["champion"]
                         else "none: no version passed every gate")
    )  # fmt: skip


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="recorded with the decision")] = "manual rollback",
) -> None:
    """Give @champion back to the version that held it before the current one, once it is
    shown to load and answer."""
    # deferred: registry.aliases pulls torch+lightning through training (~6 s measured) and
    # would load on every qtis command
    from registry.aliases import rollback

    try:
        url, tracking = ready_url(), TrackingSettings()
        probe = serving_probe(url, tracking=tracking)
        decision = rollback(url, probe, reason, tracking=tracking)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"@champion: {decision.model} v{decision.version} again (was "
        f"{decision.champion_model} v{decision.champion_version}); a running service picks it "
        "up at its next alias check, or at once on POST /admin/reload"
    )


@models_app.command("weights")
def models_weights(
    version: Annotated[
        str | None, typer.Argument(help="qtis-ensemble version (default: the latest stored)")
    ] = None,
    horizon: Annotated[int, typer.Option(help="label horizon in bars")] = 1,
    last: Annotated[int, typer.Option(help="latest out-of-sample bars to show")] = 10,
) -> None:
    """The weights qtis-ensemble's combiner gave its members at each out-of-sample bar, as
    stored in mlops.ensemble_weights by the ensemble run that registered the version."""
    # deferred: training.ensemble_series pulls mlflow (~1.2 s), which would load on every
    # qtis command
    from training.ensemble_series import load_series

    try:
        series = load_series(ready_url(), version=version)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    if series.empty:
        raise fail(
            f"no weights stored for qtis-ensemble{f' v{version}' if version else ''}: "
            "run the ensemble (`qtis ensemble`, or the Dagster asset ensemble_model)"
        )
    if horizon not in set(series["horizon"]):
        raise fail(f"no horizon {horizon} in the stored weights: one of "
                   f"{sorted(set(series['horizon']))}")  # fmt: skip
    print_weights(console, series, horizon, last)


def serve(
    host: Annotated[str | None, typer.Option(help="interface (QTIS_SERVE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (QTIS_SERVE_PORT, 3100)")] = None,
    batching: Annotated[
        bool | None, typer.Option(help="adaptive batching of /predict (QTIS_SERVE_BATCHING)")
    ] = None,
    ab_share: Annotated[
        float | None, typer.Option(help="share answered by the challenger (QTIS_SERVE_AB_SHARE)")
    ] = None,
) -> None:
    """Serve @champion (and @challenger in shadow) over HTTP with BentoML; Ctrl-C stops it."""
    # deferred: mlflow (~1.2 s), and torch+lightning through training.tracking (~6 s measured),
    # would load on every qtis command
    from mlflow.tracking import MlflowClient

    from training.tracking import CHAMPION, configure, holder  # deferred: torch+lightning

    try:  # closed by default: an open API on another interface is refused before anything
        settings = ServingSettings(**({"serve_host": host} if host is not None else {}))
        check_exposure([settings.serve_host], settings)
    except (ValidationError, OpenExposure) as exc:
        raise fail(str(exc)) from exc
    url = ready_url()
    configure(url, TrackingSettings())
    champion = holder(MlflowClient(), CHAMPION)
    if champion is None:
        raise fail(
            "no model holds @champion, so there is nothing to serve: promote one first "
            "(`qtis models promote`, or `qtis models promote NAME VERSION --force --reason ...`)"
        )
    for key, value in (("HOST", host), ("PORT", port), ("BATCHING", batching)):
        if value is not None:
            os.environ[f"QTIS_SERVE_{key}"] = str(value).lower()
    if ab_share is not None:
        os.environ["QTIS_SERVE_AB_SHARE"] = str(ab_share)
    settings = ServingSettings()
    console.print(
        f"serving {champion[0]} v{champion[1]} on http://{settings.serve_host}:"
        f"{settings.serve_port} (docs at /docs); Ctrl-C to stop"
    )
    raise typer.Exit(
        subprocess.call(
            service_command(settings.serve_host, settings.serve_port), env=service_env()
        )
    )
