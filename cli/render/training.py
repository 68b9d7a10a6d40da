"""Training as tables: the out-of-sample comparison printed by `qtis train` and the demo (from
the report dict of ``Evaluation.to_dict``, so runs read back from JSON print the same way), and
what `qtis update`, `qtis explain` and `qtis tune` found."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Column, Table


def _ci(interval: dict[str, Any] | None, digits: int = 3) -> str:
    if not interval or interval.get("value") is None:
        return "-"
    value, low, high = interval["value"], interval.get("low"), interval.get("high")
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _low(interval: dict[str, Any] | None) -> float:
    low = (interval or {}).get("low")
    return low if low is not None else -math.inf


def print_evaluation(console: Console, report: dict[str, Any]) -> None:
    # deferred: training.evaluate pulls torch+lightning via training.windows (~4 s measured with
    # -X importtime) and would load on every qtis command, --help included
    from training.evaluate import BASELINES

    models = report["models"]
    table = Table(
        "model", "MSE x1e4", "IC", "rank IC", "hit rate (p vs 50%)", "Sharpe", "max DD", "turnover",
        title=f"Out of sample, horizon 1 bar: {report['folds']} purged walk-forward folds, "
        f"test bars {report['test_start']} to {report['test_end']}, costs {report['cost_bps']:g} "
        "bps; 95% intervals",
    )  # fmt: skip
    for name, m in models.items():
        h1, t = m["horizons"]["h1"], m["trading"]
        p = f" (p={h1['hit_p_value']:.3f})" if h1.get("hit_p_value") is not None else ""
        table.add_row(
            name + (" (baseline)" if name in BASELINES else ""),
            f"{h1['mse'] * 1e4:.3f}",
            _ci(h1["ic"]),
            _ci(h1["rank_ic"]),
            _ci(h1["hit_rate"]) + p,
            _ci(t["sharpe"], 2),
            f"{t['max_drawdown']:.1%}" if t["max_drawdown"] is not None else "-",
            f"{t['turnover']:.2f}" if t["turnover"] is not None else "-",
            style="dim" if name in BASELINES else "",
        )
    console.print(table)
    horizons = report["horizons"]
    by_h = Table(
        Column("model", no_wrap=True), *(f"IC h={h}" for h in horizons),
        title="IC by horizon (OOS)",
    )  # fmt: skip
    for name, m in models.items():
        if name not in ("zero", "buy_and_hold"):
            by_h.add_row(name, *(_ci(m["horizons"][f"h{h}"]["ic"]) for h in horizons))
    console.print(by_h)
    folds = Table(
        Column("model", no_wrap=True),
        *(f"fold {f['fold']}" for f in next(iter(models.values()))["folds"]),
        title="Per fold, horizon 1: IC / Sharpe after costs",
    )
    for name, m in models.items():
        folds.add_row(name, *(_fold_cell(f) for f in m["folds"]))
    console.print(folds)
    _print_volatility(console, report.get("volatility") or {})
    base = [models[b]["trading"]["sharpe"]["value"] for b in BASELINES if b in models]
    best = max((s for s in base if s is not None), default=-math.inf)
    winners = [
        n
        for n, m in models.items()
        if n not in BASELINES
        and _low(m["trading"]["sharpe"]) > best
        and _low(m["horizons"]["h1"]["ic"]) > 0
    ]
    rule = f"IC interval above 0 and Sharpe interval above the best baseline's Sharpe ({best:.2f})"
    if winners:
        console.print(f"[green]Beat the baselines[/] ({rule}): {', '.join(winners)}")
    else:
        console.print(f"[yellow]No model beats the baselines[/] on this data (none has an {rule}).")


def _fold_cell(fold: dict[str, Any]) -> str:
    ic, sharpe = fold.get("ic_h1"), (fold.get("trading") or {}).get("sharpe") or {}
    ic_text = f"{ic:.3f}" if ic is not None else "-"
    sharpe_text = f"{sharpe['value']:.2f}" if sharpe.get("value") is not None else "-"
    return f"{ic_text} / {sharpe_text}"


def _print_volatility(console: Console, vol: dict[str, Any]) -> None:
    if not vol:
        return
    forecast, reference = vol["forecast"], vol["reference"]
    table = Table(
        "horizon",
        f"RMSE {forecast}",
        f"RMSE {reference}",
        f"QLIKE {forecast}",
        f"QLIKE {reference}",
        f"direction vs {reference} (p vs 50%)",
        title=f"Volatility forecast, out of sample: {forecast} (one step, held over the horizon) "
        f"vs persistence of {reference}; annualized",
    )
    for h, m in vol["forecast_metrics"].items():
        base = vol["reference_metrics"][h]
        p = m.get("direction_p_value")
        table.add_row(
            h,
            _num(m["rmse"]),
            _num(base["rmse"]),
            _num(m["qlike"]),
            _num(base["qlike"]),
            _ci(m["direction"]) + (f" (p={p:.3f})" if p is not None else ""),
        )
    console.print(table)


def _num(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def print_tuned(console: Console, tuning: dict[str, dict[str, Any]]) -> None:
    """Which study's best trial each family starts from."""
    for family, info in tuning.items():
        console.print(
            f"{family}: best of {info['trials']} trials of study {info['study']} "
            f"(trial {info['best_trial']}, objective {info['best_value']:.5f})"
        )


def print_registered(console: Console, registered: dict[str, dict[str, Any]]) -> None:
    """Where `qtis train` registered each family's final model."""
    for family, info in registered.items():
        console.print(
            f"MLflow: {family} -> [bold]{info['registered']}[/] version {info['version']} "
            f"(run {info['run_id'][:8]}, {info['model_uri']})"
            + (
                f"; top features {', '.join(info['top_features'])}"
                if "top_features" in info
                else ""
            )
        )


def print_update(console: Console, result) -> None:
    """An online update (``training.online.UpdateResult``): the held-out metrics before and
    after, and the version it registered."""
    base, new = result.metrics["base"], result.metrics["updated"]
    table = Table(
        "holdout metric", f"base v{result.base_version}", f"updated v{result.new_version}",
        title=f"{result.registered}: {result.rows_used:,} new rows learnt (through "
        f"{result.trained_through_after}), {result.holdout_rows:,} held out",
    )  # fmt: skip
    for key in ("mse_h1", "ic_h1", "mse_mean", "ic_mean"):
        cells = ("-" if v is None else f"{v:.6g}" for v in (base[key], new[key]))
        table.add_row(key, *cells)
    console.print(table)
    console.print(
        f"MLflow: {result.registered} version {result.new_version} (run {result.run_id[:8]}), "
        f"update of version {result.base_version}, promotion [yellow]pending[/]"
    )


def print_explanation(console: Console, found, summary: dict[str, Any], top: int) -> None:
    """SHAP importance of a registered version (``training.explain``'s result and its
    ``to_dict(top)`` summary) next to its ranking at registration."""
    attributions = found.attributions
    horizons = [f"h{h}" for h in attributions.horizons]
    reference = found.reference.set_index("feature")["rank"] if len(found.reference) else None
    table = Table(
        "rank", "feature", *horizons, "then",
        title=f"{found.registered} version {found.version}: {attributions.method} SHAP on "
        f"{attributions.values.shape[0]} bars, {found.start[:10]} to {found.end[:10]}",
        caption="mean |SHAP| per horizon (return units); then = rank at registration",
    )  # fmt: skip
    for row in attributions.importance().head(top).to_dict(orient="records"):
        then = "-" if reference is None else str(reference.get(row["feature"], "-"))
        table.add_row(
            str(row["rank"]),
            row["feature"],
            *(f"{row[f'mean_abs_{h}']:.2e}" for h in horizons),
            then,
        )
    console.print(table)
    agreement = summary.get("agreement_with_reference")
    if agreement:
        console.print(
            "Agreement with the ranking at registration: Spearman "
            + ("-" if agreement["spearman"] is None else f"{agreement['spearman']:.2f}")
            + ", "
            f"{agreement['top_overlap']:.0%} of its top {agreement['top']} still in the top "
            f"{agreement['top']}"
        )
    else:
        console.print("No ranking was stored when this version was registered.")


def print_tuning(console: Console, results: list, score: str) -> None:
    """One row per Optuna study of a `qtis tune` run, then each study's best parameters."""
    table = Table(
        "study", "trials (this run)", "complete", "pruned", "failed", "best objective",
        "trial", "by worker", "seconds", title=f"Optuna studies (objective: mean OOS {score} "
        "over inner purged walk-forward folds before the reported test period)",
    )  # fmt: skip
    for r in results:
        table.add_row(
            r.study, f"{r.total_trials} ({r.trials_run})", str(r.complete), str(r.pruned),
            str(r.failed), f"{r.best_value:.5f}" if r.best_value is not None else "-",
            str(r.best_trial), ", ".join(f"w{w}: {n}" for w, n in r.by_worker.items()),
            f"{r.seconds:.1f}",
        )  # fmt: skip
    console.print(table)
    for r in results:
        console.print(f"{r.study} best: {r.best_params}")


def print_weights(console: Console, series, horizon: int, last: int) -> None:
    """An ensemble version's weights over time (``training.ensemble_series.load_series``): per
    regime the combiner tells apart, the last ``last`` out-of-sample bars of one horizon, one
    column per member, and each member's mean weight over every bar."""
    chosen = series[series["horizon"] == horizon]
    first = series.iloc[0]
    bars = chosen["ts"].nunique()
    console.print(
        f"qtis-ensemble v{first['version']} ({first['combiner']}): weights at the last "
        f"{min(last, bars)} of {bars} out-of-sample bars, horizon {horizon} "
        "(mlops.ensemble_weights; served: the weights as of the training end)"
    )
    for regime, rows in chosen.groupby("regime", sort=False):
        wide = rows.pivot(index="ts", columns="member", values="weight")
        table = Table(Column("bar", no_wrap=True), *wide.columns, title=f"regime {regime}")
        for ts, row in wide.tail(last).iterrows():
            table.add_row(str(ts)[:10], *(f"{w:.3f}" for w in row))
        table.add_row("mean", *(f"{w:.3f}" for w in wide.mean()), style="bold")
        console.print(table)
