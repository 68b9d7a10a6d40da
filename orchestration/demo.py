"""`qtis demo`: materialize the pipeline on the bundled data and show where everything is."""

from __future__ import annotations

import contextlib

from dagster import DagsterInstance, materialize
from rich.console import Console
from rich.table import Table

from orchestration.assets import raw_bars, raw_bars_checks
from orchestration.features import dbt_resource, feature_store, garch_vol
from orchestration.instance import dagster_home
from orchestration.resources import WarehouseResource
from transforms import store
from transforms.spec import default_spec
from warehouse import quality
from warehouse.db import redact
from warehouse.schema import bars_storage
from warehouse.settings import get_settings


def run_demo(console: Console) -> None:
    # bound to the terminal, so that redirecting dbt's stream below leaves our output alone
    console = Console(file=console.file)
    settings = get_settings()
    home = dagster_home(settings)
    dbt_log = (settings.home / "logs" / "demo-dbt.log").resolve()
    dbt_log.parent.mkdir(parents=True, exist_ok=True)
    warehouse = WarehouseResource()
    with console.status("starting the database and applying migrations"):
        url = warehouse.url()
    with (
        console.status(
            "materializing raw_bars (bundled sample), garch_vol and the dbt models through Dagster"
        ),
        dbt_log.open("w") as log,
        contextlib.redirect_stdout(log),  # dagster-dbt echoes every dbt log line to stdout
    ):
        result = materialize(
            [raw_bars, *raw_bars_checks, garch_vol, feature_store],
            resources={"warehouse": warehouse, "dbt": dbt_resource()},
            instance=DagsterInstance.get(),
            run_config={
                "ops": {"raw_bars": {"config": {"source": "bundled"}}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
    if not result.success:
        raise SystemExit("the demo run failed; see the Dagster UI (make ui) for the run log")

    meta = result.asset_materializations_for_node("raw_bars")[0].metadata
    checks = result.get_asset_check_evaluations()
    s = quality.summary(url)

    table = Table("symbol", "bars", title="market.bars")
    for symbol, count in s.bars_per_symbol.items():
        table.add_row(symbol, f"{count:,}")
    console.print(table)
    console.print(
        f"[bold]Ingested[/] {meta['rows_in'].value:,} rows from the bundled sample: "
        f"{meta['inserted'].value:,} new, {meta['updated'].value:,} updated, "
        f"{meta['unchanged'].value:,} unchanged, {meta['quarantined'].value:,} quarantined."
    )
    console.print(
        f"[bold]Warehouse[/]: {s.symbols} symbols, {s.bars:,} bars, "
        f"{s.first_ts:%Y-%m-%d} to {s.last_ts:%Y-%m-%d}; {s.quarantined:,} rows in "
        f"market.bars_quarantine; flags: {s.flags or 'none'} (market.bar_flags)."
    )
    for check in sorted(checks, key=lambda c: c.check_name):
        if check.asset_key.path != ["raw_bars"]:
            continue
        if check.passed:
            state = "[green]passed[/]"
        elif check.severity.value == "WARN":
            state = "[yellow]warning[/]"
        else:
            state = "[red]failed[/]"
        details = ", ".join(
            f"{k} {v.value}"
            for k, v in check.metadata.items()
            if not isinstance(v.value, dict | list)
        )
        console.print(f"  check {check.check_name}: {state} ({details})")
    _print_features(console, url, result, checks)
    console.print(f"  dbt log of this run: {dbt_log}")
    where = settings.pgdata if settings.uses_embedded else "QTIS_DATABASE_URL"
    console.print(
        f"\n[bold]Where to look[/]\n"
        f"  database   {redact(url)}  ({bars_storage(url)} market.bars, data in {where})\n"
        f"  psql       qtis db psql   (or: make psql)\n"
        f"  Dagster UI make ui  ->  http://127.0.0.1:3000  (run {result.run_id[:8]} "
        f"is in DAGSTER_HOME={home})"
    )


def _print_features(console: Console, url: str, result, checks) -> None:
    fs = store.summary(url)
    garch = result.asset_materializations_for_node("garch_vol")[0].metadata
    dbt_checks = [c for c in checks if c.asset_key.path != ["raw_bars"]]
    failed = [c.check_name for c in dbt_checks if not c.passed]
    table = Table("table", "rows", title="feature store (schema features)")
    for name, rows in fs.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        f"[bold]Features[/]: {fs.features} feature columns x {fs.rows.get('bar_features', 0):,} "
        f"rows ({fs.symbols} symbols), {fs.labels} label columns "
        f"(horizons {', '.join(map(str, default_spec().horizons))}); GARCH "
        f"{fs.rows.get('garch_fits', 0):,} fits stored ({garch['fits'].value} new in this run). "
        "dbt tests as asset checks: "
        + (
            f"[green]{len(dbt_checks)} passed[/]"
            if not failed
            else f"[red]{len(failed)} of {len(dbt_checks)} failed[/] ({', '.join(failed)})"
        )
        + ". Definitions: docs/features.md; list: qtis features list"
    )
