"""The model benchmark: every family and baseline by purged walk-forward on one universe,
scored the way researchers compare return forecasters (IC, rank IC, ICIR, hit rate) and by
what a long-only top-k portfolio of each one's forecasts earned after costs against the
equal-weight universe, every figure with its interval. ``bench/models.py`` prints and records
it; the demo shows it.

ICIR is Qlib's: the mean of the per-bar cross-sectional IC over its standard deviation (daily,
not annualized), its interval from a block bootstrap of that IC series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from quant.bootstrap import bootstrap_intervals
from quant.conventions import PER_PERIOD, Conventions
from quant.intervals import Interval, cross_sectional_ic
from quant.topk import top_k_report
from training.data import TrainingData, load_training_data
from training.evaluate import BASELINES, Evaluation, plain
from training.runner import TrainConfig, walk_forward


@dataclass(frozen=True)
class BenchmarkConfig:
    """How forecasts are scored: on which label horizon, and the portfolio built from them."""

    horizon: int = 1  # bars of the label the forecasts are scored on and ranked by
    top_k: int = 5  # symbols held
    rebalance: int = 1  # bars between rebalances
    conventions: Conventions = field(default_factory=Conventions)  # annualization, bootstrap


def benchmark_models(
    url: str,
    train: TrainConfig,
    config: BenchmarkConfig,
    *,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    on_fold: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Walk-forward every model of ``train`` (and the baselines) on the training set from
    ``start`` on, then score them: one row per model, plus the equal-weight benchmark."""
    data = load_training_data(url, symbols, start=start)
    if not len(data):
        raise ValueError("features.training_set is empty: run `qtis features build` first")
    return score(walk_forward(data, train, on_fold), train, config)


def score(evaluation: Evaluation, train: TrainConfig, config: BenchmarkConfig) -> dict[str, Any]:
    """The benchmark's rows (JSON-safe) of a finished walk-forward evaluation."""
    data = evaluation.data
    if data.horizons[0] != 1 or config.horizon not in data.horizons:
        raise ValueError(
            f"the benchmark needs a 1-bar label and the scored horizon {config.horizon} among "
            f"the feature spec's horizons {data.horizons}"
        )
    rows = [model_row(evaluation, name, train.cost_bps, config) for name in evaluation.results]
    any_rows = next(iter(evaluation.results.values())).rows
    return plain(
        {
            "config": {"train": asdict(train), "score": asdict(config)},
            "universe": sorted(set(data.symbols[any_rows])),
            "test_start": str(data.ts[any_rows].min())[:10],
            "test_end": str(data.ts[any_rows].max())[:10],
            "test_bars": len(np.unique(data.ts[any_rows])),
            "folds": evaluation.folds,
            "models": rows,
            "benchmark": rows[0]["portfolio"]["benchmark"] if rows else None,
            "verdict": verdict(rows),
        }
    )


def model_row(
    evaluation: Evaluation, name: str, cost_bps: float, config: BenchmarkConfig
) -> dict[str, Any]:
    """One model's forecast quality at ``config.horizon`` and its top-k portfolio."""
    data, result = evaluation.data, evaluation.results[name]
    h = data.horizons.index(config.horizon)
    quality = evaluation.horizon_metrics(name, h)
    rows, pred = result.rows, result.predictions[:, h]
    daily = cross_sectional_ic(pred, data.returns[rows, h], data.ts[rows])
    icir = Interval(math.nan, math.nan, math.nan)
    if len(daily) >= 2:
        per_bar = replace(PER_PERIOD, seed=config.conventions.seed)
        icir = bootstrap_intervals(daily["ic"].to_numpy(), per_bar)["sharpe"]
    scores, moves = _wide(data, rows, pred)
    report = top_k_report(scores, moves, config.top_k, every=config.rebalance, cost_bps=cost_bps,
                          conventions=config.conventions)  # fmt: skip
    return {
        "model": name,
        "baseline": name in BASELINES,
        "ic": quality["ic"],
        "rank_ic": quality["rank_ic"],
        "ic_kind": quality["ic_kind"],
        "icir": icir,
        "hit_rate": quality["hit_rate"],
        "information_ratio": report["information_ratio"],
        "active_return": report["active_return"],
        "portfolio": {k: v for k, v in report.items() if k not in ("information_ratio",)},
        "fit_seconds": result.fit_seconds,
        "test_rows": len(rows),
    }


def _wide(data: TrainingData, rows: np.ndarray, pred: np.ndarray) -> tuple[pd.DataFrame, ...]:
    """(forecasts, next-bar simple returns) as bars x symbols: what the portfolio reads."""
    frame = pd.DataFrame({"ts": data.ts[rows], "symbol": data.symbols[rows], "p": pred,
                          "r": np.expm1(data.returns[rows, 0].astype(np.float64))})  # fmt: skip
    scores = frame.pivot(index="ts", columns="symbol", values="p").sort_index()
    moves = frame.pivot(index="ts", columns="symbol", values="r").reindex_like(scores)
    return scores, moves


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What beat what, by the intervals: families whose rank IC or information ratio lies
    wholly above 0, and whose point IR beats every baseline's."""
    families = [r for r in rows if not r["baseline"]]
    baselines = [r for r in rows if r["baseline"]]

    def low(row: dict[str, Any], key: str) -> float:
        v = row[key].low
        return v if math.isfinite(v) else -math.inf

    def point(row: dict[str, Any]) -> float:
        v = row["information_ratio"].value
        return v if math.isfinite(v) else -math.inf

    best = max((point(b) for b in baselines), default=-math.inf)
    return {
        "rank_ic_above_zero": [r["model"] for r in families if low(r, "rank_ic") > 0],
        "ir_above_zero": [r["model"] for r in families if low(r, "information_ratio") > 0],
        "ir_above_best_baseline": [r["model"] for r in families if point(r) > best],
    }


def table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of text) of a ``score`` result: what a console or a page shows."""

    def ci(v: dict[str, Any] | None, digits: int = 3, pct: bool = False) -> str:
        if not v or v.get("value") is None:
            return "n/a"
        scale, unit = (100, "%") if pct else (1, "")
        text = f"{v['value'] * scale:.{digits}f}{unit}"
        if v.get("low") is None:
            return text
        return f"{text} [{v['low'] * scale:.{digits}f}, {v['high'] * scale:.{digits}f}]"

    headers = ["model", "IC", "rank IC", "ICIR", "hit rate", "annual return", "IR vs EW",
               "Sharpe", "max drawdown"]  # fmt: skip
    out = []
    for r in result["models"]:
        p = r["portfolio"]["portfolio"]
        out.append([
            r["model"] + (" (baseline)" if r["baseline"] else ""),
            ci(r["ic"], 4), ci(r["rank_ic"], 4), ci(r["icir"], 3), ci(r["hit_rate"], 1, True),
            ci(p["annual_return"], 1, True), ci(r["information_ratio"], 2), ci(p["sharpe"], 2),
            ci(p["max_drawdown"], 1, True),
        ])  # fmt: skip
    b = result["benchmark"]
    if b:
        out.append(["equal-weight universe", "", "", "", "", ci(b["annual_return"], 1, True),
                    "", ci(b["sharpe"], 2), ci(b["max_drawdown"], 1, True)])  # fmt: skip
    return headers, out
