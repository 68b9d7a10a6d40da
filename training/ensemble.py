"""qtis-ensemble: a stacked, volatility-regime-aware combination of the LSTM, Transformer and
XGBoost predictions.

The meta-learner only ever sees out-of-fold predictions: each member's walk-forward test
predictions. Its own out-of-sample score is nested the same way: the combination used on test
fold k is fitted on folds before k (purged by the longest horizon); fold 0, with no earlier
predictions, uses equal weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression

from quant.splits import PurgedWalkForward
from training.data import TrainingData, load_training_data
from training.evaluate import Evaluation, ModelResult, evaluate, fold_scores
from training.lineage import LABEL_END, TRAINED_THROUGH, UPDATE_OF, VersionMeta, stamp
from training.models.tabular import HistoricalMeanModel, RidgeModel, ZeroModel
from training.settings import TrackingSettings
from training.tracking import REGISTERED_NAMES, configure, load_bundle, log_family
from training.windows import window_ends


@dataclass
class StackedEnsemble:
    """Per horizon and volatility regime, non-negative weights (plus an intercept) on the
    members' predictions, least squares on out-of-fold rows. The regime is the current bar's
    ``regime_feature`` above or below its median on the rows the weights were fitted on; a
    regime with fewer than ``min_regime_rows`` rows uses the pooled weights."""

    members: tuple[str, ...]
    horizons: tuple[int, ...]
    regime_feature: str = "hv_20"
    min_regime_rows: int = 250

    def fit(self, predictions: np.ndarray, regime: np.ndarray, returns: np.ndarray):
        """predictions (n, members, horizons), regime (n,), returns (n, horizons)."""
        n, _, horizons = predictions.shape
        self.threshold_ = float(np.nanmedian(regime)) if n else 0.0
        high = regime > self.threshold_
        self.weights_ = np.zeros((3, horizons, len(self.members)))  # pooled, low, high
        self.intercepts_ = np.zeros((3, horizons))
        for h in range(horizons):
            ok = np.isfinite(returns[:, h]) & np.isfinite(predictions[:, :, h]).all(axis=1)
            for r, rows in enumerate((ok, ok & ~high, ok & high)):
                if r and rows.sum() < self.min_regime_rows:
                    rows = ok
                if rows.sum() < len(self.members) + 1:  # nothing to learn from: equal weights
                    self.weights_[r, h] = 1.0 / len(self.members)
                    continue
                meta = LinearRegression(positive=True).fit(
                    predictions[rows, :, h], returns[rows, h]
                )
                self.weights_[r, h], self.intercepts_[r, h] = meta.coef_, meta.intercept_
        return self

    def combine(self, predictions: np.ndarray, regime: np.ndarray) -> np.ndarray:
        which = np.where(regime > self.threshold_, 2, 1)
        weights = self.weights_[which]  # (n, horizons, members)
        return (np.einsum("nmh,nhm->nh", predictions, weights) + self.intercepts_[which]).astype(
            np.float32
        )

    def weights(self) -> dict[str, Any]:
        """Readable weights: regime -> horizon -> member -> weight."""
        names = ("pooled", "low_vol", "high_vol")
        return {
            "threshold": self.threshold_,
            **{
                name: {
                    f"h{h}": dict(zip(self.members, map(float, self.weights_[r, i]), strict=True))
                    | {"intercept": float(self.intercepts_[r, i])}
                    for i, h in enumerate(self.horizons)
                }
                for r, name in enumerate(names)
            },
        }


def equal_weights(members: Sequence[str], horizons: Sequence[int]) -> StackedEnsemble:
    """The combination available before any out-of-fold prediction exists."""
    ensemble = StackedEnsemble(tuple(members), tuple(horizons))
    ensemble.threshold_ = 0.0
    ensemble.weights_ = np.full((3, len(horizons), len(members)), 1.0 / len(members))
    ensemble.intercepts_ = np.zeros((3, len(horizons)))
    return ensemble


def align_out_of_fold(
    data: TrainingData, frames: Mapping[str, pd.DataFrame]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``data``, folds and (rows, members, horizons) predictions from each member's
    ``Evaluation.out_of_fold`` frame; refuses members evaluated on different test bars."""
    names = list(frames)
    keys = None
    for name, frame in frames.items():
        these = frame[["symbol", "ts", "fold"]].reset_index(drop=True)
        if keys is None:
            keys = these
        elif len(these) != len(keys) or not these.equals(keys):
            raise ValueError(
                f"{name} was evaluated on other test bars than {names[0]}: train the members "
                "with the same --splits, --window and symbols before stacking them"
            )
    index = pd.MultiIndex.from_arrays([data.symbols, data.ts.astype("datetime64[us]")])
    wanted = pd.MultiIndex.from_arrays(
        [keys["symbol"].to_numpy(), keys["ts"].to_numpy().astype("datetime64[us]")]
    )
    rows = index.get_indexer(wanted)
    if (rows < 0).any():
        raise ValueError(
            f"{int((rows < 0).sum())} out-of-fold rows are not in features.training_set: the "
            "feature store changed since the members were trained; retrain them"
        )
    columns = [f"pred_h{h}" for h in data.horizons]
    predictions = np.stack([frames[n][columns].to_numpy(np.float32) for n in names], axis=1)
    return rows, keys["fold"].to_numpy(), predictions


@dataclass
class EnsembleEvaluation:
    evaluation: Evaluation  # members, ensemble and baselines on the same test bars
    final: StackedEnsemble  # fitted on every out-of-fold row: what gets registered
    fold_weights: list[dict[str, Any]] = field(default_factory=list)


def evaluate_ensemble(
    data: TrainingData,
    frames: Mapping[str, pd.DataFrame],
    baselines: Evaluation,
    regime_feature: str = "hv_20",
    name: str = "ensemble",
    fit_through: np.datetime64 | None = None,
) -> EnsembleEvaluation:
    """Nested out-of-sample score of the stack next to its members and the baselines. The
    registered stack fits the out-of-fold rows whose labels end by ``fit_through`` (the members'
    own label end, so that the ensemble has seen no later bar than they have)."""
    if regime_feature not in data.feature_names:
        raise ValueError(f"regime feature {regime_feature!r} is not a feature column")
    members = tuple(frames)
    rows, folds, predictions = align_out_of_fold(data, frames)
    regime = data.features[rows, data.feature_names.index(regime_feature)]
    returns = data.returns[rows]
    times = np.unique(data.ts)
    horizon = max(data.horizons)
    combined = np.empty((len(rows), len(data.horizons)), dtype=np.float32)
    fold_weights = []
    for k in sorted(set(folds)):
        test = folds == k
        start = np.searchsorted(times, data.ts[rows[test]].min())
        cutoff = times[max(0, start - horizon)]  # purge labels that reach into fold k
        past = (folds < k) & (data.ts[rows] < cutoff)
        if past.any():
            stack = StackedEnsemble(members, data.horizons, regime_feature).fit(
                predictions[past], regime[past], returns[past]
            )
        else:
            stack = equal_weights(members, data.horizons)
        combined[test] = stack.combine(predictions[test], regime[test])
        fold_weights.append({"fold": int(k), "fit_rows": int(past.sum())} | stack.weights())
    fit = np.ones(len(rows), dtype=bool)
    if fit_through is not None:
        fit = data.ts[rows] <= times[max(0, np.searchsorted(times, fit_through) - horizon)]
    final = (
        StackedEnsemble(members, data.horizons, regime_feature).fit(
            predictions[fit], regime[fit], returns[fit]
        )
        if fit.any()
        else equal_weights(members, data.horizons)
    )
    results = {m: ModelResult(m, rows, predictions[:, i]) for i, m in enumerate(members)}
    results[name] = ModelResult(name, rows, combined)
    results |= {b: r for b, r in baselines.results.items() if b not in results}
    evaluation = Evaluation(data, results, baselines.fold_rows, baselines.cost_bps)
    for result in results.values():  # per-fold scores, recomputed on the shared test bars
        if not result.fold_metrics:
            result.fold_metrics = _fold_metrics(evaluation, result)
    return EnsembleEvaluation(evaluation, final, fold_weights)


def _fold_metrics(evaluation: Evaluation, result: ModelResult) -> list[dict[str, Any]]:
    out = []
    for k, fold_rows in enumerate(evaluation.fold_rows):
        keep = np.isin(result.rows, fold_rows)
        rows = result.rows[keep]
        out.append(
            {"fold": k, "test_rows": int(keep.sum())}
            | fold_scores(evaluation.data, rows, result.predictions[keep])
        )
    return out


@dataclass
class EnsembleBundle:
    """The registered ensemble: member bundles and the fitted stack, feature windows in."""

    members: dict[str, Any]  # family -> fitted bundle (SequenceBundle or XGBoostModel)
    stack: StackedEnsemble
    regime_index: int
    versions: dict[str, str] = field(default_factory=dict)  # family -> registered version

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float32)
        parts = []
        for family in self.stack.members:
            bundle = self.members[family]
            if hasattr(bundle, "predict_windows"):
                parts.append(bundle.predict_windows(windows[:, -bundle.window :]))
            else:
                parts.append(bundle.predict_features(windows[:, -1]))
        return self.stack.combine(np.stack(parts, axis=1), windows[:, -1, self.regime_index])


@dataclass(frozen=True)
class EnsembleConfig:
    """What the ensemble run logs as parameters (log_family reads it like a TrainConfig:
    ``params`` and ``tuning`` per family)."""

    members: tuple[str, ...]
    member_versions: str
    regime_feature: str
    window: int
    min_history: int
    splits: int
    first_test: float
    cost_bps: float
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tuning: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class EnsembleRun:
    result: EnsembleEvaluation
    registered: dict[str, Any]
    bundle: EnsembleBundle


def _member(client, family: str, version: str | None) -> tuple[Any, dict[str, Any], Any]:
    """(model version, run, fitted bundle) of a registered member; latest version by default."""
    name = REGISTERED_NAMES[family]
    if version is None:
        # online updates (tag update_of) have no walk-forward predictions to stack on
        versions = [
            v for v in client.search_model_versions(f"name='{name}'") if UPDATE_OF not in v.tags
        ]
        if not versions:
            raise ValueError(f"{name} is not registered yet: train it first (qtis train)")
        version = str(max(int(v.version) for v in versions))
    found = client.get_model_version(name, version)
    run = client.get_run(found.run_id)
    return found, run, load_bundle(name, version)


@dataclass(frozen=True)
class _Setup:
    """How the members were evaluated (alike, or they cannot be stacked); the stack is too."""

    window: int
    min_history: int
    splits: int
    first_test: float
    cost_bps: float


def _shared_setup(found: Mapping[str, tuple[Any, Any, Any]]) -> _Setup:
    """The evaluation setup the members' runs logged; refuses members evaluated differently."""
    setup_keys = ("window", "min_history", "splits", "first_test", "cost_bps")
    setups = {
        f: {k: run.data.params.get(k) for k in setup_keys} for f, (_, run, _) in found.items()
    }
    if len({tuple(s.values()) for s in setups.values()}) > 1:
        raise ValueError(f"members were evaluated differently, retrain them alike: {setups}")
    setup = next(iter(setups.values()))
    window, min_history, splits = (int(setup[k]) for k in ("window", "min_history", "splits"))
    return _Setup(window, min_history, splits, float(setup["first_test"]), float(setup["cost_bps"]))


def _out_of_fold(found: Mapping[str, tuple[Any, Any, Any]]) -> dict[str, pd.DataFrame]:
    """Each member's logged walk-forward test predictions."""
    return {
        f: pd.read_parquet(
            download_artifacts(run_id=v.run_id, artifact_path="oof_predictions.parquet")
        )
        for f, (v, _, _) in found.items()
    }


def _baselines(data: TrainingData, setup: _Setup) -> Evaluation:
    """The baselines, walked forward exactly as the members were."""
    return evaluate(
        data,
        {"zero": ZeroModel, "ridge": RidgeModel, "buy_and_hold": HistoricalMeanModel},
        PurgedWalkForward(
            n_splits=setup.splits, horizon=max(data.horizons), first_test=setup.first_test
        ),
        window=setup.window,
        min_history=setup.min_history,
        cost_bps=setup.cost_bps,
    )


def _register(
    data: TrainingData,
    result: EnsembleEvaluation,
    bundle: EnsembleBundle,
    members: Sequence[str],
    found: Mapping[str, tuple[Any, Any, Any]],
    setup: _Setup,
    regime_feature: str,
    fit_through: np.datetime64 | None,
) -> dict[str, Any]:
    """Log and register qtis-ensemble (with its per-fold and final weights)."""
    metas = [VersionMeta.from_tags(run.data.tags) for _, run, _ in found.values()]
    trials = sum(m.tuning_trials for m in metas)
    config = EnsembleConfig(
        members=tuple(members),
        member_versions=",".join(f"{f}:{v}" for f, v in bundle.versions.items()),
        regime_feature=regime_feature,
        window=setup.window,
        min_history=setup.min_history,
        splits=setup.splits,
        first_test=setup.first_test,
        cost_bps=setup.cost_bps,
        tuning={"ensemble": {"study": "members' studies", "trials": trials}},
    )
    window = setup.window
    ends = window_ends(data, window, setup.min_history)[-2:]
    example = data.features[ends[:, None] + np.arange(-window + 1, 1)]
    seen = [m.trained_through for m in metas]
    through = stamp(min(seen)) if all(seen) else ""  # "": a member's is unknown
    labels = stamp(fit_through if fit_through is not None else data.ts.max())
    registered = log_family(
        "ensemble", result.evaluation, config, bundle, example,
        tags={TRAINED_THROUGH: through, LABEL_END: labels,
              "members": config.member_versions},
    )  # fmt: skip
    with mlflow.start_run(run_id=registered["run_id"]):
        mlflow.log_dict(
            {"final": result.final.weights(), "per_fold": result.fold_weights},
            "ensemble_weights.json",
        )
    registered["example"] = example
    return registered


def run_ensemble(
    url: str,
    members: Sequence[str] = ("lstm", "transformer", "xgboost"),
    versions: Mapping[str, str] | None = None,
    regime_feature: str = "hv_20",
    track: bool = True,
    *,
    tracking: TrackingSettings,
) -> EnsembleRun:
    """Stack the registered members (latest versions unless given) on their logged out-of-fold
    predictions, score the stack out of sample next to them and the baselines, and register
    qtis-ensemble (``tracking``: the MLflow store they are read from and it goes to)."""
    configure(url, tracking)
    client = MlflowClient()
    found = {f: _member(client, f, (versions or {}).get(f)) for f in members}
    setup = _shared_setup(found)
    metas = [VersionMeta.from_tags(run.data.tags) for _, run, _ in found.values()]
    symbols = sorted({s for m in metas for s in m.symbols})
    data = load_training_data(url, symbols)
    frames = _out_of_fold(found)
    baselines = _baselines(data, setup)
    seen = [m.label_end for m in metas]
    # None: older members
    fit_through = np.datetime64(stamp(max(seen)), "us") if all(seen) else None
    result = evaluate_ensemble(data, frames, baselines, regime_feature, fit_through=fit_through)
    bundle = EnsembleBundle(
        members={f: b for f, (_, _, b) in found.items()},
        stack=result.final,
        regime_index=data.feature_names.index(regime_feature),
        versions={f: str(v.version) for f, (v, _, _) in found.items()},
    )
    registered: dict[str, Any] = {}
    if track:
        registered = _register(
            data, result, bundle, members, found, setup, regime_feature, fit_through
        )
    return EnsembleRun(result, registered, bundle)
