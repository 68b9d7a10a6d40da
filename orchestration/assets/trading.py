"""Trading as a Dagster asset: after promotion, the champion is traded out of sample through
the event-sourced engine next to the reference strategies, after costs. Each run is a journal
stream (``qtis trade status --stream ...``) and a JSON report with every fill."""

import json
from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset

from orchestration.resources import WarehouseResource
from trading_runtime.runs import RunReport, reference_runs
from training.evaluate import plain


class BacktestConfig(Config):
    fast: int = 20  # the reference SMA cross
    slow: int = 50


def backtests_markdown(runs: dict[str, RunReport]) -> str:
    lines = ["| strategy | bars | return | Sharpe | max drawdown | fees + slippage | orders |",
             "|" + "---|" * 7]  # fmt: skip
    for name, result in runs.items():
        m = next(iter(result.metrics.values()))
        lines.append(
            f"| {name} | {m['bars']} | {m['total_return']:.2%} | {m['sharpe']:.2f} "
            f"| {m['max_drawdown']:.2%} | {m['fees'] + m['slippage']:,.2f} | {m['orders']} |"
        )
    return "\n".join(lines)


@asset(
    group_name="trading",
    deps=[AssetKey("promotion")],
    description="The champion traded out of sample next to buy-and-hold, an SMA cross and a "
    "risk-parity portfolio on the same bars, after costs, through the event-sourced engine",
)
def reference_backtests(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: BacktestConfig
) -> MaterializeResult:
    url = warehouse.url()
    tag = f"backtest-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    runs, why = reference_runs(url, tag, config.fast, config.slow, tracking=warehouse.tracking())
    if why:
        context.log.warning(f"no model traded: {why}")
    reports = warehouse.settings().home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    metadata = {"backtests": MetadataValue.md(backtests_markdown(runs)), "streams": tag}
    for name, result in runs.items():
        path = reports / f"backtest_{name}.json"
        path.write_text(json.dumps(plain(result.to_json()), indent=1))
        m = next(iter(result.metrics.values()))
        metadata[f"{name}_sharpe"] = float(m["sharpe"])
        metadata[f"{name}_total_return"] = float(m["total_return"])
        metadata[f"{name}_report"] = MetadataValue.path(str(path))
    first = next(iter(runs.values())).equity_curve
    metadata["window"] = f"{first[0]['ts'][:10]} to {first[-1]['ts'][:10]}" if first else "-"
    return MaterializeResult(metadata=metadata)
