"""``qtis models`` (champion/challenger status, gated promotion, rollback) and ``qtis serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestration.cli_common import console, fail, ready_url

models_app = typer.Typer(
    help="Champion/challenger: promotion gates, status, rollback.", no_args_is_help=True
)

GATE_ORDER = ("beats_champion", "deflated_sharpe", "beats_baselines", "servable")


def _cell(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "-"
    mark = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[dim]n/a[/]"}[gate["passed"]]
    value = gate.get("value")
    return mark if value is None else f"{mark} {value:.3g}"


def decisions_table(title: str, decisions: list[dict[str, Any]]) -> Table:
    """One row per decision: each gate's verdict and number, the PBO, the reason."""
    table = Table(
        "model", "decision", "vs champion (p)", "deflated SR", "vs baselines (SR)",
        "p99 ms", "PBO", "why", title=title,
        caption="pass/fail and the gate's number; n/a = not applicable (e.g. no champion yet)",
    )  # fmt: skip
    styles = {"promoted": "green", "forced": "yellow", "challenger": "cyan", "rolled_back": "cyan"}
    for d in decisions:
        gates = {g["name"]: g for g in d["gates"]}
        pbo = gates.get("backtest_overfitting", {}).get("value")
        style = styles.get(d["decision"], "red")
        table.add_row(
            f"{d['model']} v{d['version']}",
            f"[{style}]{d['decision']}[/]",
            *(_cell(gates.get(name)) for name in GATE_ORDER),
            "-" if pbo is None else f"{pbo:.2f}",
            _short(d),
        )
    return table


def _short(decision: dict[str, Any]) -> str:
    failed = [g["name"] for g in decision["gates"] if g["passed"] is False]
    if decision["decision"] in ("promoted", "rolled_back") or not failed:
        return decision["reason"]
    return "failed " + ", ".join(failed)


def print_decisions(title: str, decisions: list[dict[str, Any]], out=None) -> None:
    """The table, then each decision's full reason."""
    out = out or console
    out.print(decisions_table(title, decisions))
    for d in decisions:
        out.print(f"  {d['model']} v{d['version']} {d['decision']}: {d['reason']}")


@models_app.command("status")
def models_status(
    limit: Annotated[int, typer.Option(help="latest decisions to show")] = 10,
) -> None:
    """Who holds @champion and @challenger, and the latest promotion decisions with their gates."""
    from registry.promotions import as_decisions, status

    try:
        found = status(ready_url(), limit)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    for alias in ("champion", "challenger"):
        holder = found[alias]
        console.print(f"@{alias}: " + (f"[bold]{holder[0]} v{holder[1]}[/]" if holder else "none"))
    rows = as_decisions(found["decisions"])
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
    from mlflow.tracking import MlflowClient

    from registry import aliases, promotions
    from serving.probe import serving_probe
    from training import tracking

    try:
        url = ready_url()
        probe = serving_probe(url)
        candidates = None
        if model is not None:
            tracking.configure(url)
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
                decisions = [aliases.force(url, *candidates[0], reason, probe)]
            else:
                decisions = aliases.promote(url, probe, candidates)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    if not decisions:
        console.print("No new version to judge (every latest version has a decision).")
        return
    print_decisions("Promotion", [d.to_dict() for d in decisions])
    found = promotions.status(url, limit=0)
    console.print(
        "@champion: " + (f"{found['champion'][0]} v{found['champion'][1]}" if found["champion"]
                         else "none: no version passed every gate")
    )  # fmt: skip


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="recorded with the decision")] = "manual rollback",
) -> None:
    """Give @champion back to the version that held it before the current one."""
    from registry.aliases import rollback

    try:
        decision = rollback(ready_url(), reason)
    except (ValueError, ConnectionError) as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"@champion: {decision.model} v{decision.version} again (was "
        f"{decision.champion_model} v{decision.champion_version}); a running service picks it "
        "up at its next alias check, or at once on POST /admin/reload"
    )


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
    from mlflow.tracking import MlflowClient

    from serving.settings import ServingSettings
    from training import tracking
    from training.tracking import CHAMPION, holder

    url = ready_url()
    tracking.configure(url)
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


def service_env() -> dict[str, str]:
    """No usage tracking; and a service that cannot start exits instead of being restarted."""
    return dict(os.environ) | {"BENTOML_DO_NOT_TRACK": "true", "BENTOML_CONTAINERIZED": "true"}


def service_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:QtisService",
        "--host",
        host,
        "--port",
        str(port),
    ]
