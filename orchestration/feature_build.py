"""`qtis features build`: the same steps as the Dagster feature assets, with progress bars."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from transforms import store
from transforms.dbt_runner import BuildReport, build, ensure_manifest
from transforms.garch import GarchReport, update_garch


@dataclass
class FeatureBuild:
    garch: GarchReport
    dbt: BuildReport


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        transient=True,
    )


def _dbt_node_count(select: str | None) -> int | None:
    import json

    if select:
        return None
    manifest = json.loads(ensure_manifest().read_text())
    kinds = ("model", "seed", "test")
    return sum(1 for n in manifest["nodes"].values() if n["resource_type"] in kinds)


def build_features(
    url: str, console: Console, *, full_refresh: bool = False, select: str | None = None
) -> FeatureBuild:
    rewritten = [] if full_refresh else store.rewritten_history(url)
    if rewritten:
        console.print(
            f"[yellow]history changed[/] for {len(rewritten)} symbol(s) "
            f"({', '.join(rewritten[:5])}{' ...' if len(rewritten) > 5 else ''}): "
            "running a full refresh"
        )
        full_refresh = True
    with _progress(console) as progress:
        task = progress.add_task("GARCH(1,1) fits", total=None, current="")

        def on_symbol(message: str) -> None:
            progress.update(task, advance=1, current=message)

        garch = update_garch(url, full_refresh=full_refresh, progress=on_symbol)
        progress.update(task, total=len(garch.symbols), completed=len(garch.symbols))

        nodes = progress.add_task("dbt build", total=_dbt_node_count(select), current="")

        def on_node(name: str, status: str) -> None:
            if status == "started":
                progress.update(nodes, current=name)
            else:
                progress.update(nodes, advance=1)

        dbt = build(url, full_refresh=full_refresh, select=select, on_node=on_node)
    return FeatureBuild(garch=garch, dbt=dbt)


def print_build(console: Console, url: str, report: FeatureBuild) -> None:
    g = report.garch
    console.print(
        f"[bold]GARCH[/]: {len(g.symbols)} symbols, {g.fits} fits, {g.rows_written:,} rows "
        f"written, {len(g.skipped_symbols)} skipped (too short), {g.failed_fits} failed fits, "
        f"{g.seconds:.1f}s"
    )
    dbt = report.dbt
    table = Table("model", "status", "rows", "seconds", title="dbt build")
    for node in dbt.nodes:
        if node.resource_type in ("model", "seed"):
            rows = f"{node.rows:,}" if node.rows is not None else ""
            table.add_row(node.name, _status(node.status), rows, f"{node.seconds:.2f}")
    console.print(table)
    tests = [n for n in dbt.nodes if n.resource_type == "test"]
    passed = sum(n.status == "pass" for n in tests)
    console.print(
        f"[bold]dbt tests[/]: {passed}/{len(tests)} passed"
        + (
            ""
            if passed == len(tests)
            else " - failing: "
            + ", ".join(f"{n.name} ({n.message})" for n in tests if n.status != "pass")
        )
    )
    for node in dbt.failures():
        if node.resource_type != "test":
            console.print(f"[red]{node.name}[/]: {node.message}")
    s = store.summary(url)
    kind = "full refresh" if dbt.full_refresh else "incremental"
    console.print(
        f"[bold]Feature store[/] ({kind}, {dbt.seconds:.1f}s): {s.features} features x "
        f"{s.rows.get('bar_features', 0):,} rows in features.bar_features ({s.symbols} symbols"
        + (f", {s.first_ts:%Y-%m-%d} to {s.last_ts:%Y-%m-%d}" if s.first_ts else "")
        + f"); {s.labels} label columns x {s.rows.get('labels', 0):,} rows in features.labels; "
        f"features.training_set {s.rows.get('training_set', 0):,} rows"
    )


def _status(status: str) -> str:
    colour = {"success": "green", "pass": "green", "skipped": "yellow"}.get(status, "red")
    return f"[{colour}]{status}[/]"
