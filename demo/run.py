"""`qtis demo` (`make demo`): materialize the pipeline on the bundled data and show where
everything is."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import mlflow  # noqa: F401  (it sets its loggers' levels when imported: before _quiet_libraries)
from rich.console import Console
from rich.table import Table

from cli.render.format import symbols_text
from cli.render.training import print_evaluation
from core.secrets import redact
from demo.currencies import show_currencies
from demo.futures import show_futures
from demo.live import show_live
from demo.monitoring import show_drift
from demo.options import show_options
from demo.panels import show_panels
from demo.research import show_research
from demo.risk import show_var_backtests
from demo.series import ingest_sample, show_series
from demo.serving import print_promotion, show_serving
from demo.strategies import show_strategies
from demo.summary import print_summary
from demo.trading import show_trading
from orchestration.assets.features import feature_store, garch_vol
from orchestration.assets.ingest import raw_bars, raw_bars_checks
from orchestration.assets.online import model_update
from orchestration.assets.promotion import promotion
from orchestration.assets.training import ensemble_model, report_path, training_assets
from orchestration.assets.tuning import tuning_assets
from orchestration.instance import dagster_home
from orchestration.materialize import run_assets
from orchestration.resources import WarehouseResource, dbt_resource
from trading_runtime.settings import RiskReportSettings
from training.families import SEED_FAMILIES
from transforms import store
from transforms.spec import default_spec
from warehouse import quality
from warehouse.schema import bars_storage
from warehouse.settings import get_settings


def _quiet_libraries() -> None:
    """The demo prints its own summary: MLflow's per-model notices, pickling advice and
    artifact progress bars would bury it (the Dagster run log keeps everything)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "psycopg"):
        logging.getLogger(name).setLevel(logging.ERROR)


# a synthetic universe's history: long enough for the walk-forward's three-year windows
SYNTHETIC_BARS = 1500


def synthetic_home(symbols: int) -> None:
    """``--synthetic N`` runs in its own QTIS_HOME (embedded database, MLflow artifacts,
    Dagster runs), so that its symbols and models never mix with the bundled demo's."""
    if symbols < 2:
        raise SystemExit(f"--synthetic needs at least 2 symbols, got {symbols}")
    if os.environ.get("QTIS_DATABASE_URL"):
        raise SystemExit(
            "--synthetic runs on its own embedded database: unset QTIS_DATABASE_URL (or load "
            "a synthetic market into yours with `qtis ingest --source synthetic`)"
        )
    home = get_settings().home / f"synthetic-{symbols}"
    os.environ["QTIS_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")


def run_demo(console: Console, synthetic: int | None = None) -> None:
    # bound to the terminal, so that redirecting dbt's stream below leaves our output alone
    # (and 120 columns when that is a log file, not a terminal: tables stay readable)
    console = Console(file=console.file, width=None if console.is_terminal else 120)
    _quiet_libraries()
    if synthetic is not None:
        synthetic_home(synthetic)
        source = {"source": "synthetic", "n_symbols": synthetic, "n_bars": SYNTHETIC_BARS}
    else:
        source = {"source": "bundled"}
    settings = get_settings()
    home = dagster_home(settings)
    dbt_log = (settings.home / "logs" / "demo-dbt.log").resolve()
    dbt_log.parent.mkdir(parents=True, exist_ok=True)
    warehouse = WarehouseResource()
    with console.status("starting the database and applying migrations"):
        url = warehouse.url()
    with console.status("loading the US macro sample into market.series"):
        series = ingest_sample(url)
    result = _materialize_data(console, warehouse, source, dbt_log)
    checks = result.get_asset_check_evaluations()
    _print_ingest(console, url, result, checks)
    _print_features(console, url, result, checks)
    console.print(f"  dbt log of this run: {dbt_log}")
    show_panels(console, settings)
    show_series(console, url, series, min(quality.bars_per_symbol(url)))
    training = _train(console, warehouse)
    research = show_research(console, settings)
    paper = show_trading(console, warehouse)
    show_strategies(console, url)
    show_var_backtests(console, url, RiskReportSettings())
    show_futures(console, settings)
    show_options(console, settings)
    show_currencies(console, settings)
    show_live(console, url, settings, warehouse.tracking())
    drift = show_drift(console, warehouse)
    reports = settings.home / "reports"
    sheets = sorted(reports.glob("tearsheet_*.html"), key=lambda p: p.stat().st_mtime)
    print_summary(console, url, settings.home, drift, [
        ("research", research),
        ("Dagster UI", f"make ui -> http://127.0.0.1:3000 (DAGSTER_HOME={home})"),
        ("MLflow UI", "qtis mlflow ui -> http://127.0.0.1:5000 (experiment qtis)"),
        ("tear sheet", str(sheets[-1].resolve()) if sheets else "none"),
        ("drift report", str(drift.path.resolve()) if drift and drift.path else "none"),
    ], warehouse.tracking())  # fmt: skip
    runs = (result.run_id, training.run_id)
    _print_where(console, url, settings, home, runs, paper, drift)


def _print_where(
    console: Console, url: str, settings, home: Path, runs: tuple[str, str], paper: str, drift
) -> None:
    """Where each part of the run can be looked at afterwards, and the commands to do it."""
    where = settings.pgdata if settings.uses_embedded else "QTIS_DATABASE_URL"
    console.print(
        f"\n[bold]Where to look[/]\n"
        f"  database   {redact(url)}  ({bars_storage(url)} market.bars, data in {where})\n"
        f"  psql       qtis db psql   (or: make psql)\n"
        f"  Dagster UI make ui  ->  http://127.0.0.1:3000  (runs {runs[0][:8]}, "
        f"{runs[1][:8]} are in DAGSTER_HOME={home})\n"
        "  MLflow UI  qtis mlflow ui  ->  http://127.0.0.1:5000  (experiment qtis, models qtis-*)\n"
        "  Optuna     qtis optuna dashboard  ->  http://127.0.0.1:8080  (studies qtis-*)\n"
        f"  reports    {report_path(settings.home, 'lstm').parent}/<family>.json\n"
        "  SHAP       MLflow run artifacts explanations/ (summary plot, importance table);\n"
        "             qtis explain --model xgboost  (recent bars vs the ranking at registration)\n"
        "  promotion  qtis models status  (gates and decisions; mlops.promotions)\n"
        "  serving    qtis serve  ->  http://127.0.0.1:3100  (POST /predict, /explain; GET "
        "/model; OpenAPI /docs.json)\n"
        f"  trading    qtis trade status --stream {paper}  (positions, orders, risk state);\n"
        f"             qtis trade replay --stream {paper}  (rebuild from runtime.events);\n"
        f"             qtis trade audit --stream {paper} --format json  (each order: model,"
        " forecast, risk checks, fills);\n"
        f"             qtis trade backtest --signal sma-cross --fast 20 --slow 50 --json-out "
        f"{settings.home}/reports/bt.json;  backtest JSON in {settings.home}/reports/"
        "backtest_<strategy>.json\n"
        "             qtis trade report <stream> --html sheet.html  (metrics with intervals,"
        " execution quality, portfolio risk);\n"
        "             qtis trade walkforward --windows 4 --mode rolling  (a model per window,"
        " traded only after it)\n"
        f"  drift      {drift.path if drift and drift.path else 'not checked'}\n"
        "             qtis monitor drift  (data, forecasts, accuracy, SHAP ranking vs training;"
        " mlops.drift_results)"
    )


def _materialize_data(console: Console, warehouse: WarehouseResource, source: dict, dbt_log):
    """raw_bars (with its checks), garch_vol and the dbt models, dbt's output in ``dbt_log``."""
    with (
        console.status(
            "materializing raw_bars (bundled sample), garch_vol and the dbt models through Dagster"
        ),
        dbt_log.open("w") as log,
        contextlib.redirect_stdout(log),  # dagster-dbt echoes every dbt log line to stdout
    ):
        result = run_assets(
            [raw_bars, *raw_bars_checks, garch_vol, feature_store],
            {"warehouse": warehouse, "dbt": dbt_resource()},
            ops={"raw_bars": {"config": source}},
        )
    if not result.success:
        raise SystemExit("the demo run failed; see the Dagster UI (make ui) for the run log")
    return result


def _print_counts(console: Console, columns: tuple[str, str], counts: dict, title: str) -> None:
    table = Table(*columns, title=title)
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)


# a universe of more symbols than this is summarized in one line, not a table row per symbol
SHOWN_SYMBOLS = 12


def bars_line(per_symbol: dict[str, int]) -> str:
    """market.bars of a large universe in one line: its symbols and how many bars each has."""
    counts = sorted(per_symbol.values())
    if not counts:
        return "market.bars: empty"
    each = f"{counts[0]:,} bars each"
    if counts[0] != counts[-1]:
        each = f"{counts[0]:,} to {counts[-1]:,} bars each (median {counts[len(counts) // 2]:,})"
    return f"market.bars: {symbols_text(list(per_symbol))}, {each}"


def _print_ingest(console: Console, url: str, result, checks) -> None:
    meta = result.asset_materializations_for_node("raw_bars")[0].metadata
    s = quality.summary(url)
    if len(s.bars_per_symbol) <= SHOWN_SYMBOLS:
        _print_counts(console, ("symbol", "bars"), s.bars_per_symbol, "market.bars")
    else:
        console.print(bars_line(s.bars_per_symbol), highlight=False)
    console.print(
        f"[bold]Ingested[/] {meta['rows_in'].value:,} rows from {meta['origin'].value}: "
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


def _print_features(console: Console, url: str, result, checks) -> None:
    fs = store.summary(url)
    garch = result.asset_materializations_for_node("garch_vol")[0].metadata
    dbt_checks = [c for c in checks if c.asset_key.path != ["raw_bars"]]
    failed = [c.check_name for c in dbt_checks if not c.passed]
    _print_counts(console, ("table", "rows"), fs.rows, "feature store (schema features)")
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


# small but real: the seed's architectures at reduced width, a few epochs, three folds
DEMO_TRAINING = {"size": "small", "epochs": 2, "splits": 3, "window": 60, "xgb_estimators": 200}
# transfer learning: the LSTM is also fine-tuned per symbol, evaluated beside itself, registered
# (qtis-lstm-ft-symbol) and judged by the gates like the others
DEMO_FINE_TUNE = {"lstm": {"fine_tune": "symbol"}}
# a short study per family (a handful of trials) on the history before the test folds
DEMO_TUNING = {
    "xgboost_tuning": {"trials": 12, "workers": 2, "xgb_estimators": 200},
    "lstm_tuning": {"trials": 4, "workers": 2, "epochs": 2},
    "transformer_tuning": {"trials": 2, "workers": 2, "epochs": 2},
}


# the final fits stop before their purged validation tail: fold those labelled bars in
DEMO_UPDATE = {"family": "xgboost", "rounds": 20}


def _train(console: Console, warehouse: WarehouseResource):
    """Materialize tuning, the three model assets and the ensemble; print one out-of-sample
    comparison of all of them on the same test bars."""
    with console.status(
        "tuning (Optuna, 2 workers per study), training LSTM, Transformer and XGBoost (purged "
        "walk-forward, small sizes), stacking them and running the promotion gates, through "
        "Dagster"
    ):
        seeds = {f"{f}_{step}" for f in SEED_FAMILIES for step in ("model", "tuning")}
        result = run_assets(
            [a for a in (*tuning_assets, *training_assets) if a.op.name in seeds]
            + [ensemble_model, promotion, model_update],
            {"warehouse": warehouse},
            ops={
                f"{f}_model": {"config": DEMO_TRAINING | DEMO_FINE_TUNE.get(f, {})}
                for f in SEED_FAMILIES
            }
            | {name: {"config": config} for name, config in DEMO_TUNING.items()}
            | {"model_update": {"config": DEMO_UPDATE}},
        )
    if not result.success:
        raise SystemExit("training failed; see the Dagster UI (make ui) for the run log")
    _print_tuning(console, result)
    home = warehouse.settings().home
    print_evaluation(console, json.loads(report_path(home, "ensemble").read_text()))
    for node in (*(f"{family}_model" for family in SEED_FAMILIES), "ensemble_model"):
        meta = result.asset_materializations_for_node(node)[0].metadata
        console.print(
            f"  MLflow: {meta['registered_model'].value} version {meta['version'].value} "
            f"(run {meta['mlflow_run_id'].value[:8]})"
            + (f", members {meta['members'].value}" if "members" in meta else "")
            + (
                f"; top SHAP features {meta['top_features'].value}"
                if meta.get("top_features") and meta["top_features"].value
                else ""
            )
        )
        if "fine_tuned_registered_model" in meta:
            console.print(
                f"  MLflow: {meta['fine_tuned_registered_model'].value} version "
                f"{meta['fine_tuned_version'].value} (fine-tuned per symbol, served by symbol): "
                f"{meta['fine_tuning'].value}"
            )
    _print_update(console, result)
    if print_promotion(console, result, warehouse.url(), warehouse.tracking()) is not None:
        show_serving(console, warehouse.url(), home / "logs" / "demo-serving.log")
    return result


def _print_update(console: Console, result) -> None:
    found = result.asset_materializations_for_node("model_update")
    if not found:
        console.print("  Online update: no newly labelled bars since the models were trained")
        return
    meta = {k: v.value for k, v in found[0].metadata.items()}

    def ic(which: str) -> str:
        value = meta.get(f"holdout_ic_mean_{which}")
        return "-" if value is None else f"{value:.4f}"

    console.print(
        f"[bold]Online update[/] (model_update): {meta['registered_model']} version "
        f"{meta['new_version']} = version {meta['base_version']} + {meta['rows_used']:,} newly "
        f"labelled rows (through {meta['trained_through_after'][:10]}); on "
        f"{meta['holdout_rows']:,} held-out rows mean IC {ic('base')} -> {ic('updated')}; "
        "promotion [yellow]pending[/]"
    )


def _print_tuning(console: Console, result) -> None:
    table = Table(
        "study", "trials", "pruned", "best objective (OOS R² vs zero)", "best params",
        title="Optuna (inner purged walk-forward folds, all before the test period below)",
    )  # fmt: skip
    for family in SEED_FAMILIES:
        meta = result.asset_materializations_for_node(f"{family}_tuning")[0].metadata
        best = meta["best_value"].value
        params = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (meta["best_params"].value or {}).items()
        )
        table.add_row(
            meta["study"].value,
            str(meta["trials_total"].value),
            str(meta["pruned"].value),
            f"{best:.5f}" if best is not None else "-",
            params,
        )
    console.print(table)
