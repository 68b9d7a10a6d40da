"""The out-of-sample comparison table printed by `qtis train` and the demo (from the report
dict of ``Evaluation.to_dict``, so runs read back from JSON print the same way)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from training.evaluate import BASELINES


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
    by_h = Table("model", *(f"IC h={h}" for h in horizons), title="IC by horizon (OOS)")
    for name, m in models.items():
        if name not in ("zero", "buy_and_hold"):
            by_h.add_row(name, *(_ci(m["horizons"][f"h{h}"]["ic"]) for h in horizons))
    console.print(by_h)
    folds = Table(
        "model",
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
