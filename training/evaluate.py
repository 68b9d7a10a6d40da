"""Walk-forward evaluation: every model fitted per fold, scored only on that fold's test bars,
next to the baselines. Nothing in-sample is reported."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from quant import intervals
from quant.splits import PurgedWalkForward
from training import metrics
from training.data import TrainingData
from training.windows import window_ends

BASELINES = ("zero", "ridge", "buy_and_hold")  # every model is reported next to these


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
    fold_rows: list[np.ndarray]  # each fold's test rows
    cost_bps: float
    vol_forecast: str = "garch_vol"
    vol_reference: str = "hv_20"

    @property
    def folds(self) -> int:
        return len(self.fold_rows)

    def horizon_metrics(self, name: str, h_index: int) -> dict[str, Any]:
        r = self.results[name]
        true = self.data.returns[r.rows, h_index]
        pred = r.predictions[:, h_index]
        h = self.data.horizons[h_index]
        ic = intervals.information_coefficients(pred, true, self.data.ts[r.rows], overlap=h)
        hit = intervals.directional_accuracy(pred, true, overlap=h)
        return {
            "mse": metrics.mse(pred, true),
            "ic": ic["ic"],
            "rank_ic": ic["rank_ic"],
            "ic_kind": ic["kind"],
            "hit_rate": hit["accuracy"],
            "hit_p_value": hit["p_value"],
            "n": hit["n"],
        }

    def volatility(self) -> dict[str, Any]:
        """The volatility forecast (GARCH(1,1) one step ahead, held flat over each horizon) and
        the persistence baseline (trailing historical vol) against the realized forward vol of
        every horizon, overall and per fold, on the same test bars as the models."""
        names = self.data.feature_names
        if self.vol_forecast not in names or self.vol_reference not in names:
            return {}
        forecast = self.data.features[:, names.index(self.vol_forecast)]
        reference = self.data.features[:, names.index(self.vol_reference)]
        rows = np.concatenate(self.fold_rows) if self.fold_rows else np.empty(0, int)
        out: dict[str, Any] = {"forecast": self.vol_forecast, "reference": self.vol_reference}
        for label, model in (("forecast_metrics", forecast), ("reference_metrics", reference)):
            out[label] = {}
            for i, h in enumerate(self.data.horizons):
                realized = self.data.volatility[:, i]
                overall = metrics.volatility_forecast(
                    model[rows], realized[rows], reference[rows], overlap=h
                )
                overall["folds"] = [
                    {
                        "fold": number,
                        **metrics.volatility_forecast(
                            model[r], realized[r], reference[r], overlap=h
                        ),
                    }
                    for number, r in enumerate(self.fold_rows)
                ]
                out[label][f"h{h}"] = overall
        return plain(out)

    def trading(
        self, name: str, long_short: bool = True, fold: int | None = None
    ) -> metrics.StrategyResult:
        """The 1-bar rule on the first horizon's prediction (buy-and-hold: always long), over
        all test bars or one fold's."""
        r = self.results[name]
        keep = np.isin(r.rows, self.fold_rows[fold]) if fold is not None else slice(None)
        rows, pred = r.rows[keep], r.predictions[keep, 0]
        signal = pred if name != "buy_and_hold" else np.ones(len(rows))
        return metrics.strategy(
            signal,
            self.data.returns[rows, 0],
            self.data.symbols[rows],
            self.data.ts[rows],
            cost_bps=self.cost_bps,
            long_short=long_short and name != "buy_and_hold",
        )

    def out_of_fold(self, name: str) -> pd.DataFrame:
        """One model's walk-forward test predictions with their (symbol, ts) keys and fold: what
        an ensemble's meta-learner may be fitted on."""
        r = self.results[name]
        fold = np.full(len(self.data), -1)
        for number, rows in enumerate(self.fold_rows):
            fold[rows] = number
        frame = pd.DataFrame(
            {"symbol": self.data.symbols[r.rows], "ts": self.data.ts[r.rows], "fold": fold[r.rows]}
        )
        for i, h in enumerate(self.data.horizons):
            frame[f"pred_h{h}"] = r.predictions[:, i]
        return frame

    def to_dict(self) -> dict[str, Any]:
        rows = np.concatenate([r.rows for r in self.results.values()])
        out: dict[str, Any] = {
            "folds": self.folds,
            "cost_bps": self.cost_bps,
            "test_start": str(self.data.ts[rows].min())[:10] if len(rows) else None,
            "test_end": str(self.data.ts[rows].max())[:10] if len(rows) else None,
            "horizons": list(self.data.horizons),
            "models": {},
            "volatility": self.volatility(),
        }
        for name, r in self.results.items():
            horizons = {
                f"h{h}": plain(self.horizon_metrics(name, i))
                for i, h in enumerate(self.data.horizons)
            }
            out["models"][name] = {
                "test_rows": len(r.rows),
                "fit_seconds": r.fit_seconds,
                "horizons": horizons,
                "trading": plain(self.trading(name).summary()),
                "folds": [
                    fold | plain({"trading": self.trading(name, fold=i).summary()})
                    for i, fold in enumerate(r.fold_metrics)
                ],
            }
        return out


def plain(value: Any) -> Any:
    """``value`` as JSON-safe Python: intervals as dicts, numpy scalars unwrapped, NaN/inf None."""
    if isinstance(value, intervals.Interval):
        return plain({"value": value.value, "low": value.low, "high": value.high})
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
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
    fold_rows = []
    for fold in splitter.split(data.ts):
        train, val, test = (rows[valid[rows]] for rows in (fold.train, fold.validation, fold.test))
        fold_rows.append(test)
        for name, make in models.items():
            if on_fold:
                on_fold(name, fold.number)
            started = time.perf_counter()
            model = make().fit(data, train, val)
            pred = model.predict(data, test)
            results[name].fit_seconds += time.perf_counter() - started
            collected[name].append((test, pred))
            results[name].fold_metrics.append(
                {
                    "fold": fold.number,
                    "train_rows": len(train),
                    "test_rows": len(test),
                    "test_start": str(data.ts[test].min()) if len(test) else None,
                    "test_end": str(data.ts[test].max()) if len(test) else None,
                    "processes": getattr(model, "processes_", 1),  # > 1 under DDP
                    **fold_scores(data, test, pred),
                }
            )
    for name, parts in collected.items():
        results[name].rows = np.concatenate([p[0] for p in parts])
        results[name].predictions = np.concatenate([p[1] for p in parts])
    return Evaluation(data, results, fold_rows, cost_bps)


def fold_scores(data: TrainingData, rows: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MSE, IC and hit rate of one fold, per horizon (plain floats, for MLflow steps)."""
    out = {}
    for i, h in enumerate(data.horizons):
        true = data.returns[rows, i]
        ic = intervals.information_coefficients(pred[:, i], true, data.ts[rows])["ic"]
        out[f"mse_h{h}"] = metrics.mse(pred[:, i], true)
        out[f"ic_h{h}"] = ic.value
        out[f"hit_rate_h{h}"] = intervals.directional_accuracy(pred[:, i], true)["accuracy"].value
    return plain(out)
