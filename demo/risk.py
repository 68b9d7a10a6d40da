"""The demo's VaR backtest on the bundled universe: an equal-weight portfolio of its symbols,
each bar's 1-bar VaR forecast by every method (historical, normal, Cornish-Fisher, Monte Carlo
normal/t/bootstrap, EVT and the t copula) from the bars before it only, then the exceptions
tested for coverage (Kupiec) and independence (Christoffersen), with their p-values."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from quant.var_backtest import rolling_backtest
from trading_runtime.settings import RiskReportSettings
from warehouse.reads import read_bars

BARS = 750  # the last three years of the sample, forecast out of sample
REFIT = 63  # a refit a quarter keeps the demo's part to seconds (the run report refits monthly)


def show_var_backtests(console: Console, url: str, settings: RiskReportSettings) -> None:
    bars = read_bars(url).to_pandas()
    closes = bars.pivot(index="ts", columns="symbol", values="close").sort_index()
    returns = closes.pct_change(fill_method=None).dropna()
    weights = pd.Series(1 / returns.shape[1], index=returns.columns)
    with console.status(f"VaR backtests: every method, {BARS} bars out of sample"):
        table = rolling_backtest(
            returns, weights, (0.99, 0.95), window=settings.backtest_window, refit=REFIT,
            last=BARS, paths=settings.backtest_paths, seed=settings.seed,
        )  # fmt: skip
    out = Table(
        "level", "method", "exceptions", "expected", "Kupiec p", "independence p",
        "cond. coverage p",
        title=f"VaR backtest, equal-weight {', '.join(returns.columns)}: last {BARS} bars,"
        f" each 1-bar VaR from the {settings.backtest_window} bars before (refit every {REFIT})",
        caption="p < 0.05 rejects: too many or too few exceptions (Kupiec), exceptions that"
        " cluster (independence), either (conditional coverage)",
    )  # fmt: skip
    for row in table.to_dict(orient="records"):
        if isinstance(row.get("note"), str):
            out.add_row(f"{row['level']:.0%}", row["method"], "-", "-", row["note"], "", "")
            continue
        out.add_row(
            f"{row['level']:.0%}", row["method"], str(int(row["exceptions"])),
            f"{row['expected']:.1f}", _p(row["kupiec_p"]), _p(row["independence_p"]),
            _p(row["cc_p"]),
        )  # fmt: skip
    console.print(out)


def _p(value: float) -> str:
    if value != value:
        return "-"
    return f"[red]{value:.3f}[/]" if value < 0.05 else f"{value:.3f}"
