"""qtis-ensemble: the registered members (LSTM, Transformer, XGBoost, ...) combined on their
out-of-fold predictions by one of three combiners, each scored out of sample next to them.

- ``stack`` (default, ``training.stack``): volatility-regime-aware least-squares weights. Its
  score is nested: the combination used on test fold k is fitted on folds before k (purged by
  the longest horizon); fold 0, with no earlier predictions, uses equal weights.
- ``vote`` and ``select`` (``training.adaptive``): weights from the members' recent errors on
  labels already known at each bar (inverse-MSE voting; per-regime choice of the best member).

The meta-learner only ever sees out-of-fold predictions: each member's walk-forward test
predictions.
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

from quant.splits import PurgedWalkForward
from training.adaptive import ADAPTIVE, AdaptiveEnsemble, fit_out_of_fold
from training.data import TrainingData, load_training_data
from training.ensemble_series import log_series, save_series, weight_series
from training.evaluate import Evaluation, ModelResult, evaluate, fold_scores
from training.lineage import LABEL_END, TRAINED_THROUGH, UPDATE_OF, VersionMeta, stamp
from training.models.tabular import HistoricalMeanModel, RidgeModel, ZeroModel
from training.settings import TrackingSettings
from training.stack import StackedEnsemble, equal_weights, fixed_weights
from training.tracking import REGISTERED_NAMES, configure, load_bundle, log_family
from training.windows import window_ends


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
    evaluation: Evaluation  # members, the combiners and baselines on the same test bars
    final: StackedEnsemble  # the registered combination (a vote or selection: frozen weights)
    fold_weights: list[dict[str, Any]] = field(default_factory=list)  # the stack's, per fold
    combiner: str = "stack"
    series: pd.DataFrame | None = None  # the combiner's weights at each OOS bar (ensemble_series)


COMBINERS = ("stack", *ADAPTIVE)
# the regimes whose weights each combiner tells apart (the vote has one set for all)
SWITCHED = {
    "stack": ("low_vol", "high_vol"),
    "vote": ("pooled",),
    "select": ("low_vol", "high_vol"),
}


def evaluate_ensemble(
    data: TrainingData,
    frames: Mapping[str, pd.DataFrame],
    baselines: Evaluation,
    regime_feature: str = "hv_20",
    name: str = "ensemble",
    fit_through: np.datetime64 | None = None,
    combiner: str = "stack",
    lookback: int = 63,
) -> EnsembleEvaluation:
    """Out-of-sample scores of every combiner (the nested stack, the vote and the selection,
    walked forward on known labels over ``lookback`` bars) next to the members and the
    baselines: ``combiner``'s as ``name``, the others as ``name_<combiner>``. The registered
    combination uses the out-of-fold rows whose labels end by ``fit_through`` (the members'
    own label end, so that the ensemble has seen no later bar than they have): the stack fitted
    on them, or the vote's or selection's weights as of that bar."""
    if regime_feature not in data.feature_names:
        raise ValueError(f"regime feature {regime_feature!r} is not a feature column")
    if combiner not in COMBINERS:
        raise ValueError(f"combiner must be one of {', '.join(COMBINERS)}, got {combiner!r}")
    members = tuple(frames)
    rows, folds, predictions = align_out_of_fold(data, frames)
    regime = data.features[rows, data.feature_names.index(regime_feature)]
    returns = data.returns[rows]
    times = np.unique(data.ts)
    steps = np.searchsorted(times, data.ts[rows])
    bars, first = np.unique(steps, return_index=True)
    stacks, fold_weights = _nested_stacks(data, members, rows, folds, predictions, regime,
                                          returns, times, regime_feature)  # fmt: skip
    combined = {"stack": np.empty((len(rows), len(data.horizons)), dtype=np.float32)}
    for k, stack in stacks.items():
        combined["stack"][folds == k] = stack.combine(predictions[folds == k], regime[folds == k])
    paths = {"stack": np.stack([stacks[k].weights_ for k in folds[first]])}
    adaptive = {}
    for kind in ADAPTIVE:
        adaptive[kind] = fit_out_of_fold(kind, members, data, rows, predictions, regime_feature,
                                         lookback)  # fmt: skip
        combined[kind] = adaptive[kind].combine(predictions, regime, steps)
        paths[kind] = adaptive[kind].weights_at(bars)
    final = _final(data, members, combiner, adaptive, predictions, regime, returns, times,
                   rows, fit_through, regime_feature)  # fmt: skip
    results = {m: ModelResult(m, rows, predictions[:, i]) for i, m in enumerate(members)}
    results[name] = ModelResult(name, rows, combined[combiner])
    for other in COMBINERS:
        if other != combiner:
            results[f"{name}_{other}"] = ModelResult(f"{name}_{other}", rows, combined[other])
    results |= {b: r for b, r in baselines.results.items() if b not in results}
    evaluation = Evaluation(data, results, baselines.fold_rows, baselines.cost_bps)
    for result in results.values():  # per-fold scores, recomputed on the shared test bars
        if not result.fold_metrics:
            result.fold_metrics = _fold_metrics(evaluation, result)
    series = weight_series(times[bars], paths[combiner], members, data.horizons,
                           SWITCHED[combiner])  # fmt: skip
    return EnsembleEvaluation(evaluation, final, fold_weights, combiner, series)


def _nested_stacks(
    data: TrainingData,
    members: tuple[str, ...],
    rows: np.ndarray,
    folds: np.ndarray,
    predictions: np.ndarray,
    regime: np.ndarray,
    returns: np.ndarray,
    times: np.ndarray,
    regime_feature: str,
) -> tuple[dict[int, StackedEnsemble], list[dict[str, Any]]]:
    """Per test fold, the stack fitted on the folds before it, purged by the longest horizon
    (fold 0: equal weights), and its readable weights."""
    horizon = max(data.horizons)
    stacks, fold_weights = {}, []
    for k in sorted(set(folds)):
        start = np.searchsorted(times, data.ts[rows[folds == k]].min())
        cutoff = times[max(0, start - horizon)]  # purge labels that reach into fold k
        past = (folds < k) & (data.ts[rows] < cutoff)
        if past.any():
            stack = StackedEnsemble(members, data.horizons, regime_feature).fit(
                predictions[past], regime[past], returns[past]
            )
        else:
            stack = equal_weights(members, data.horizons)
        stacks[int(k)] = stack
        fold_weights.append({"fold": int(k), "fit_rows": int(past.sum())} | stack.weights())
    return stacks, fold_weights


def _final(
    data: TrainingData,
    members: tuple[str, ...],
    combiner: str,
    adaptive: Mapping[str, AdaptiveEnsemble],
    predictions: np.ndarray,
    regime: np.ndarray,
    returns: np.ndarray,
    times: np.ndarray,
    rows: np.ndarray,
    fit_through: np.datetime64 | None,
    regime_feature: str,
) -> StackedEnsemble:
    """The combination to register, from what is known by ``fit_through`` (default: the last
    bar)."""
    now = len(times) - 1
    if fit_through is not None:
        now = int(np.searchsorted(times, fit_through, side="right")) - 1
    if combiner in adaptive:
        chosen = adaptive[combiner]
        weights = chosen.weights_at(np.array([now]))[0]
        return fixed_weights(members, data.horizons, weights, chosen.threshold_, regime_feature)
    fit = np.ones(len(rows), dtype=bool)
    if fit_through is not None:
        horizon = max(data.horizons)
        fit = data.ts[rows] <= times[max(0, np.searchsorted(times, fit_through) - horizon)]
    if not fit.any():
        return equal_weights(members, data.horizons)
    return StackedEnsemble(members, data.horizons, regime_feature).fit(
        predictions[fit], regime[fit], returns[fit]
    )


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
    combiner: str = "stack"  # stack | vote | select (COMBINERS)
    lookback: int = 63  # bars of known labels the vote and the selection look back over
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
    url: str,
    data: TrainingData,
    result: EnsembleEvaluation,
    bundle: EnsembleBundle,
    members: Sequence[str],
    found: Mapping[str, tuple[Any, Any, Any]],
    setup: _Setup,
    regime_feature: str,
    fit_through: np.datetime64 | None,
    lookback: int,
) -> dict[str, Any]:
    """Log and register qtis-ensemble (with its per-fold and final weights, every combiner's
    report, and its weights over time, also stored in ``mlops.ensemble_weights``)."""
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
        combiner=result.combiner,
        lookback=lookback,
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
    run_id = registered["run_id"]
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict(
            {"combiner": result.combiner, "final": result.final.weights(),
             "per_fold": result.fold_weights},
            "ensemble_weights.json",
        )  # fmt: skip
        mlflow.log_dict(result.evaluation.to_dict(), "ensemble_report.json")
    log_series(run_id, result.series)
    save_series(url, registered["registered"], str(registered["version"]), run_id,
                result.combiner, result.series)  # fmt: skip
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
    combiner: str = "stack",
    lookback: int = 63,
) -> EnsembleRun:
    """Combine the registered members (latest versions unless given) on their logged
    out-of-fold predictions, score every combiner out of sample next to them and the
    baselines, and register qtis-ensemble with ``combiner``'s combination (stack, vote or
    select; ``lookback``: the bars of known labels the vote and the selection weigh) and its
    weights over time (``tracking``: the MLflow store they are read from and it goes to)."""
    if combiner not in COMBINERS:
        raise ValueError(f"combiner must be one of {', '.join(COMBINERS)}, got {combiner!r}")
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
    result = evaluate_ensemble(data, frames, baselines, regime_feature, fit_through=fit_through,
                               combiner=combiner, lookback=lookback)  # fmt: skip
    bundle = EnsembleBundle(
        members={f: b for f, (_, _, b) in found.items()},
        stack=result.final,
        regime_index=data.feature_names.index(regime_feature),
        versions={f: str(v.version) for f, (v, _, _) in found.items()},
    )
    registered: dict[str, Any] = {}
    if track:
        registered = _register(url, data, result, bundle, members, found, setup,
                               regime_feature, fit_through, lookback)  # fmt: skip
    return EnsembleRun(result, registered, bundle)
