"""The out-of-sample comparison table printed by `qtis train` and the demo."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from training.evaluate import Evaluation
from training.runner import BASELINES


def _ci(interval, digits: int = 3) -> str:
    if interval is None or not math.isfinite(interval.value):
        return "-"
    if not math.isfinite(interval.low):
        return f"{interval.value:.{digits}f}"
    return f"{interval.value:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def print_evaluation(console: Console, ev: Evaluation) -> None:
    data = ev.data
    first = min(str(data.ts[r.rows].min()) for r in ev.results.values())[:10]
    last = max(str(data.ts[r.rows].max()) for r in ev.results.values())[:10]
    table = Table(
        "model", "MSE x1e4", "IC", "rank IC", "hit rate (p vs 50%)", "Sharpe", "max DD", "turnover",
        title=f"Out of sample, horizon 1 bar: {ev.folds} purged walk-forward folds, "
        f"test bars {first} to {last}, costs {ev.cost_bps:g} bps; 95% intervals",
    )  # fmt: skip
    trading = {name: ev.trading(name) for name in ev.results}
    for name in ev.results:
        m = ev.horizon_metrics(name, 0)
        t = trading[name]
        style = "dim" if name in BASELINES else ""
        p = f" (p={m['hit_p_value']:.3f})" if math.isfinite(m["hit_p_value"]) else ""
        table.add_row(
            name + (" (baseline)" if name in BASELINES else ""),
            f"{m['mse'] * 1e4:.3f}",
            _ci(m["ic"]),
            _ci(m["rank_ic"]),
            _ci(m["hit_rate"]) + p,
            _ci(t.sharpe, 2),
            f"{t.max_drawdown:.1%}",
            f"{t.turnover:.2f}",
            style=style,
        )
    console.print(table)
    by_h = Table("model", *(f"IC h={h}" for h in data.horizons), title="IC by horizon (OOS)")
    for name in ev.results:
        if name in ("zero", "buy_and_hold"):
            continue
        by_h.add_row(
            name, *(_ci(ev.horizon_metrics(name, i)["ic"]) for i in range(len(data.horizons)))
        )
    console.print(by_h)
    best_base = max(
        (
            trading[b].sharpe.value
            for b in BASELINES
            if b in trading and math.isfinite(trading[b].sharpe.value)
        ),
        default=math.nan,
    )
    winners = [
        n
        for n in ev.results
        if n not in BASELINES
        and math.isfinite(trading[n].sharpe.low)
        and trading[n].sharpe.low > best_base
        and ev.horizon_metrics(n, 0)["ic"].low > 0
    ]
    if winners:
        console.print(
            f"[green]Beat the baselines[/] (IC > 0 and Sharpe CI above the best baseline "
            f"Sharpe {best_base:.2f}): {', '.join(winners)}"
        )
    else:
        console.print(
            "[yellow]No model beats the baselines[/] on this data: none has an IC interval above "
            f"0 together with a Sharpe interval above the best baseline's Sharpe ({best_base:.2f})."
        )
