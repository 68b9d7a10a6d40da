"""Walk-forward evaluation: every model fitted per fold, scored only on that fold's test bars,
next to the baselines. Nothing in-sample is reported."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from training import metrics
from training.data import TrainingData
from training.splits import PurgedWalkForward
from training.windows import window_ends


class Estimator(Protocol):
    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> Any: ...

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray: ...


@dataclass
class ModelResult:
    name: str
    rows: np.ndarray  # test rows, all folds
    predictions: np.ndarray  # (rows, horizons)
    fold_metrics: list[dict[str, Any]] = field(default_factory=list)
    fit_seconds: float = 0.0


@dataclass
class Evaluation:
    data: TrainingData
    results: dict[str, ModelResult]
    folds: int
    cost_bps: float

    def horizon_metrics(self, name: str, h_index: int) -> dict[str, Any]:
        r = self.results[name]
        true = self.data.returns[r.rows, h_index]
        pred = r.predictions[:, h_index]
        ic = metrics.information_coefficients(pred, true, self.data.ts[r.rows])
        hit = metrics.directional_accuracy(pred, true)
        return {
            "mse": metrics.mse(pred, true),
            "ic": ic["ic"],
            "rank_ic": ic["rank_ic"],
            "ic_kind": ic["kind"],
            "hit_rate": hit["accuracy"],
            "hit_p_value": hit["p_value"],
            "n": hit["n"],
        }

    def trading(self, name: str, long_short: bool = True) -> metrics.StrategyResult:
        """The 1-bar rule on the first horizon's prediction (buy-and-hold: always long)."""
        r = self.results[name]
        signal = r.predictions[:, 0] if name != "buy_and_hold" else np.ones(len(r.rows))
        return metrics.strategy(
            signal,
            self.data.returns[r.rows, 0],
            self.data.symbols[r.rows],
            self.data.ts[r.rows],
            cost_bps=self.cost_bps,
            long_short=long_short and name != "buy_and_hold",
        )

    def to_dict(self) -> dict[str, Any]:
        rows = np.concatenate([r.rows for r in self.results.values()])
        out: dict[str, Any] = {
            "folds": self.folds,
            "cost_bps": self.cost_bps,
            "test_start": str(self.data.ts[rows].min())[:10] if len(rows) else None,
            "test_end": str(self.data.ts[rows].max())[:10] if len(rows) else None,
            "horizons": list(self.data.horizons),
            "models": {},
        }
        for name, r in self.results.items():
            horizons = {
                f"h{h}": _plain(self.horizon_metrics(name, i))
                for i, h in enumerate(self.data.horizons)
            }
            out["models"][name] = {
                "test_rows": len(r.rows),
                "fit_seconds": r.fit_seconds,
                "horizons": horizons,
                "trading": _plain(self.trading(name).summary()),
                "folds": r.fold_metrics,
            }
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, metrics.Interval):
        return _plain({"value": value.value, "low": value.low, "high": value.high})
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate(
    data: TrainingData,
    models: Mapping[str, Callable[[], Estimator]],
    splitter: PurgedWalkForward,
    *,
    window: int = 60,
    min_history: int = 0,
    cost_bps: float = 5.0,
    on_fold: Callable[[str, int], None] | None = None,
) -> Evaluation:
    """Fit each model on each fold's (purged) past, predict its test block, collect OOS."""
    valid = np.zeros(len(data), dtype=bool)
    valid[window_ends(data, window, min_history)] = True
    collected: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in models}
    results = {
        n: ModelResult(n, np.empty(0, int), np.empty((0, len(data.horizons)))) for n in models
    }
    folds = 0
    for fold in splitter.split(data.ts):
        folds += 1
        train, val, test = (rows[valid[rows]] for rows in (fold.train, fold.validation, fold.test))
        for name, make in models.items():
            if on_fold:
                on_fold(name, fold.number)
            started = time.perf_counter()
            model = make().fit(data, train, val)
            pred = model.predict(data, test)
            results[name].fit_seconds += time.perf_counter() - started
            collected[name].append((test, pred))
            true = data.returns[test, 0]
            results[name].fold_metrics.append(
                {
                    "fold": fold.number,
                    "train_rows": len(train),
                    "test_rows": len(test),
                    "test_start": str(data.ts[test].min()) if len(test) else None,
                    "test_end": str(data.ts[test].max()) if len(test) else None,
                    "mse_h1": metrics.mse(pred[:, 0], true),
                    "hit_rate_h1": metrics.directional_accuracy(pred[:, 0], true)["accuracy"].value,
                }
            )
    for name, parts in collected.items():
        results[name].rows = np.concatenate([p[0] for p in parts])
        results[name].predictions = np.concatenate([p[1] for p in parts])
    return Evaluation(data, results, folds, cost_bps)
