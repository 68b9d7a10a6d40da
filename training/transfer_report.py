"""Does fine-tuning help out of sample? The pre-trained family and its fine-tuned variant on the
same walk-forward test rows: a Diebold-Mariano test of their squared errors per horizon (per bar,
averaged across symbols, in time order, as promotion compares a challenger with its champion),
their squared errors per symbol, and each fold's fine-tune details; logged to the family's MLflow
run beside its own out-of-sample metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from quant.significance import diebold_mariano
from training.evaluate import Evaluation, plain
from training.families import fine_tuned_name
from training.transfer import FineTuning


def per_bar_losses(
    evaluation: Evaluation, first: str, second: str, h_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per test bar (time order), the mean squared error across symbols of two models that
    predicted the same rows."""
    a, b = evaluation.results[first], evaluation.results[second]
    if not np.array_equal(a.rows, b.rows):
        raise ValueError(f"{first} and {second} were not scored on the same test rows")
    true = evaluation.data.returns[a.rows, h_index]
    frame = pd.DataFrame(
        {
            "ts": evaluation.data.ts[a.rows],
            "first": (a.predictions[:, h_index] - true) ** 2,
            "second": (b.predictions[:, h_index] - true) ** 2,
        }
    )[np.isfinite(true)]
    per_bar = frame.groupby("ts")[["first", "second"]].mean().sort_index()
    return per_bar["first"].to_numpy(), per_bar["second"].to_numpy()


def compare(evaluation: Evaluation, tuning: FineTuning) -> dict[str, Any]:
    """Per network family: the pre-trained and fine-tuned names, a one-sided Diebold-Mariano test
    per horizon (H0: fine-tuning does not lower the squared errors), the h1 MSE per symbol, the
    fine-tune details of every fold, and a one-line verdict on h1."""
    out: dict[str, Any] = {}
    data = evaluation.data
    for family, folds in tuning.details.items():
        tuned = fine_tuned_name(family, tuning.group)
        tests = {}
        for i, h in enumerate(data.horizons):
            pre, post = per_bar_losses(evaluation, family, tuned, i)
            try:
                tests[f"h{h}"] = diebold_mariano(pre, post, horizon=h).to_dict()
            except ValueError as exc:  # too few shared bars
                tests[f"h{h}"] = {"error": str(exc)}
        out[family] = plain(
            {
                "pretrained": family,
                "fine_tuned": tuned,
                "group": tuning.group,
                **{k: tuning.settings[family][k] for k in ("steps", "lr", "min_rows")},
                "diebold_mariano": tests,
                "symbols_mse_h1": _symbol_mse(evaluation, family, tuned),
                "folds": folds,
                "verdict": _verdict(tests[f"h{data.horizons[0]}"], data.horizons[0]),
            }
        )
    return out


def _symbol_mse(evaluation: Evaluation, family: str, tuned: str) -> dict[str, dict[str, float]]:
    """h1 MSE of both models on each symbol's test rows."""
    a, b = evaluation.results[family], evaluation.results[tuned]
    true = evaluation.data.returns[a.rows, 0]
    ok = np.isfinite(true)
    symbols = evaluation.data.symbols[a.rows]
    out = {}
    for symbol in sorted(set(symbols)):
        at = ok & (symbols == symbol)
        out[str(symbol)] = {
            "pretrained": float(np.mean((a.predictions[at, 0] - true[at]) ** 2)),
            "fine_tuned": float(np.mean((b.predictions[at, 0] - true[at]) ** 2)),
            "test_rows": int(at.sum()),
        }
    return out


def _verdict(test: dict[str, Any], h: int) -> str:
    if "error" in test:
        return f"no test on h{h}: {test['error']}"
    better = test["p_value"] < 0.05
    lower = "lower" if test["mean_loss_difference"] > 0 else "higher"
    return (
        f"fine-tuning {'helps' if better else 'does not help'} out of sample on h{h}: squared "
        f"errors {lower} on average, DM {test['statistic']:.2f}, one-sided p={test['p_value']:.3f}"
        f" over {test['n']} bars"
    )


def log_fine_tuning(run_id: str, section: dict[str, Any], tuned: dict[str, Any]) -> None:
    """Into the family's MLflow run: the fine-tuned variant's OOS IC per horizon and Sharpe, the
    DM p-values (metrics ``ft_*``), and the whole comparison (artifact fine_tuning.json).
    ``tuned``: the fine-tuned model's entry of the evaluation report."""
    client = MlflowClient()
    metrics = {f"ft_oos_ic_{h}": v["ic"]["value"] for h, v in tuned["horizons"].items()}
    metrics["ft_oos_sharpe"] = tuned["trading"]["sharpe"]["value"]
    metrics |= {f"ft_dm_p_{h}": t.get("p_value") for h, t in section["diebold_mariano"].items()}
    for key, value in metrics.items():
        if value is not None:
            client.log_metric(run_id, key, float(value))
    client.set_tag(run_id, "fine_tune", section["group"])
    client.log_dict(run_id, section | {"report": tuned}, "fine_tuning.json")
