"""The model benchmark on a real universe: skfolio's 20 S&P 500 large caps (adjusted closes,
1990-2022, shipped with the package: offline), the last ``--years`` of them ingested as a wide
panel into a throw-away embedded Postgres, features built by dbt (those needing high, low or
volume are null for close-only symbols), then every model family and baseline by purged
walk-forward (training.benchmark): IC, rank IC, ICIR, hit rate, and a long-only top-k
portfolio's annual return, information ratio against the equal-weight universe, Sharpe and max
drawdown after costs, all with 95% intervals.

    python -m bench.models [--size small] [--epochs 2] [--splits 4] [--years 12] [--top-k 5]
                           [--horizon 1] [--rebalance 1] [--cost-bps 5] [--models all]

The default took 49 minutes on 2 CPU cores (beside a test run; the networks' fits are most of
it, docs/model_benchmarks.md); ``--models`` picks families, ``--size seed --years 33`` is the
whole history at the seed's network sizes (hours on a CPU).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from bench._results import write
from training.benchmark import BenchmarkConfig, benchmark_models, table
from training.families import MODEL_HELP, parse_families
from training.runner import SIZES, TrainConfig
from training.tracking import git_commit

# Qlib's published Alpha158 benchmark on CSI300 (examples/benchmarks/README.md, mean of 20 seeds;
# test 2017-2020, top-50 dropout portfolio, IR of the excess return over the CSI300 index after
# costs): another market, other features and another period - the scale of what such models
# achieve, not a comparison
QLIB_ALPHA158_CSI300 = {
    "source": "microsoft/qlib examples/benchmarks/README.md, Alpha158, CSI300",
    "LightGBM": {"ic": 0.0448, "icir": 0.3660, "rank_ic": 0.0469, "annual_return": 0.0901,
                 "information_ratio": 1.0164, "max_drawdown": -0.1038},
    "XGBoost": {"ic": 0.0498, "icir": 0.3779, "rank_ic": 0.0505, "annual_return": 0.0780,
                "information_ratio": 0.9070, "max_drawdown": -0.1168},
    "Linear": {"ic": 0.0397, "icir": 0.3000, "rank_ic": 0.0472, "annual_return": 0.0692,
               "information_ratio": 0.9209, "max_drawdown": -0.1509},
    "LSTM (20 selected features)": {"ic": 0.0318, "icir": 0.2367, "rank_ic": 0.0435,
                                    "annual_return": 0.0381, "information_ratio": 0.5561,
                                    "max_drawdown": -0.1207},
    "Transformer": {"ic": 0.0264, "icir": 0.2053, "rank_ic": 0.0407, "annual_return": 0.0273,
                    "information_ratio": 0.3970, "max_drawdown": -0.1101},
    "TCN": {"ic": 0.0275, "icir": 0.2157, "rank_ic": 0.0411, "annual_return": 0.0190,
            "information_ratio": 0.2887, "max_drawdown": -0.1202},
}  # fmt: skip


def write_panel(folder: Path, years: float) -> tuple[Path, dict[str, Any]]:
    """The last ``years`` of skfolio's S&P 500 closes as a wide CSV (Date + one column each)."""
    from skfolio.datasets import load_sp500_dataset  # deferred: only the data step reads it

    prices = load_sp500_dataset()
    start = prices.index[-1] - pd.DateOffset(days=round(years * 365.25))
    prices = prices.loc[start:]
    path = folder / "sp500.csv"
    prices.to_csv(path, index_label="Date")
    span = {"first_bar": str(prices.index[0].date()), "last_bar": str(prices.index[-1].date()),
            "bars": len(prices), "symbols": list(prices.columns)}  # fmt: skip
    return path, span


def prepare(work: Path, years: float, console: Console) -> tuple[str, dict[str, Any]]:
    """An embedded server under ``work`` with the panel ingested and its features built."""
    # deferred: dbt, GARCH and the server are loaded only when the data is prepared
    from transforms.dbt_runner import build
    from transforms.garch import update_garch
    from warehouse import embedded
    from warehouse.db import with_database
    from warehouse.ingest import ingest
    from warehouse.providers import FileProvider
    from warehouse.schema import migrate
    from warehouse.settings import WarehouseSettings

    admin = embedded.start(work / "pg")
    embedded.ensure_database(admin, "qtis")
    url = with_database(admin, "qtis")
    os.environ.update(QTIS_DATABASE_URL=url, QTIS_HOME=str(work / ".qtis"))
    migrate(url)
    path, span = write_panel(work, years)
    timings = {}
    started = time.perf_counter()
    with console.status(f"ingesting {span['bars']:,} days x {len(span['symbols'])} symbols"):
        report = ingest(FileProvider(path, "csv"), url, WarehouseSettings())
    timings["ingest_s"] = time.perf_counter() - started
    with console.status("GARCH(1,1) volatility and the dbt feature build"):
        update_garch(url)
        timings["garch_s"] = time.perf_counter() - started - timings["ingest_s"]
        if not build(url, full_refresh=True, tests=False).success:
            raise RuntimeError("the dbt feature build failed; run `qtis features build` to see why")
    timings["features_s"] = time.perf_counter() - started - sum(timings.values())
    return url, span | {"loaded": report.loaded, "quarantined": report.quarantined} | timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--years", type=float, default=12, help="the last this many years")
    parser.add_argument("--models", default="all", help=MODEL_HELP)
    parser.add_argument("--xgb-estimators", type=int, default=300)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=1, help="label scored and ranked on")
    parser.add_argument("--rebalance", type=int, default=1, help="bars between rebalances")
    parser.add_argument("--cost-bps", type=float, default=5.0)
    args = parser.parse_args()
    console = Console()
    from warehouse import embedded  # deferred: as in prepare

    train = TrainConfig(models=parse_families(args.models), size=args.size, epochs=args.epochs,
                        splits=args.splits, xgb_estimators=args.xgb_estimators,
                        cost_bps=args.cost_bps, explain_samples=0, accelerator="cpu")  # fmt: skip
    score = BenchmarkConfig(horizon=args.horizon, top_k=args.top_k, rebalance=args.rebalance)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qtis-bench-models-") as tmp:
        work = Path(tmp)
        try:
            url, data = prepare(work, args.years, console)
            with console.status("walk-forward") as status:

                def on_fold(name: str, fold: int) -> None:
                    status.update(f"walk-forward: {name}, fold {fold + 1} of {args.splits}")

                result = benchmark_models(url, train, score, on_fold=on_fold)
        finally:
            embedded.stop(work / "pg")
    headers, rows = table(result)
    title = (
        f"{len(result['universe'])} S&P 500 large caps (skfolio, close only), test "
        f"{result['test_start']} to {result['test_end']} ({result['test_bars']:,} days, "
        f"{result['folds']} folds); networks {args.size}, {args.epochs} epoch(s); label "
        f"h={args.horizon}; top {args.top_k} long-only, rebalanced every {args.rebalance} "
        f"bar(s), {args.cost_bps:g} bps"
    )
    t = Table(*headers, title=title)
    for row in rows:
        t.add_row(*row)
    Console(width=max(console.width, 200)).print(t)  # intervals need the width
    verdict = result["verdict"]
    console.print(
        "families with rank IC above 0 (95%): "
        f"{', '.join(verdict['rank_ic_above_zero']) or 'none'}; with IR above 0: "
        f"{', '.join(verdict['ir_above_zero']) or 'none'}"
    )
    console.print(
        "the scale, not a comparison (Qlib Alpha158 on CSI300: another market, features and "
        "period): "
        + "; ".join(
            f"{name} IC {v['ic']:.4f} ICIR {v['icir']:.2f} IR {v['information_ratio']:.2f}"
            for name, v in QLIB_ALPHA158_CSI300.items()
            if name != "source"
        )
    )
    figures = {
        "commit": git_commit(),
        "params": vars(args),
        "data": data,
        "result": result,
        "qlib_alpha158_csi300": QLIB_ALPHA158_CSI300,
        "total_s": time.perf_counter() - started,
    }
    write("models", figures, console)


if __name__ == "__main__":
    main()
