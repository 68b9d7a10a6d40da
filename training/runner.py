"""What `qtis train` and the Dagster training assets run: load, split, fit, score, report."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from quant.splits import PurgedWalkForward, final_split
from training import explain
from training.data import TrainingData, load_training_data
from training.distributed import PRECISIONS, global_rank
from training.evaluate import Estimator, Evaluation, evaluate
from training.families import FAMILIES, GROUPINGS, SEED_FAMILIES, fine_tuned_name, is_tree, lookup
from training.lineage import LABEL_END, TRAINED_THROUGH, stamp
from training.models.cross_asset import CrossAssetModel
from training.models.networks import NETWORKS
from training.models.sequence import SequenceModel
from training.models.tabular import TREE_MODELS, HistoricalMeanModel, RidgeModel, ZeroModel
from training.settings import TrackingSettings
from training.tracking import configure, log_family
from training.transfer import FineTuning, read_sectors, with_fine_tuning
from training.transfer_report import compare, log_fine_tuning
from training.windows import window_ends
from transforms.spec import default_spec

# network sizes: "seed" is the seed spec's architecture (the networks' defaults); "small" trains
# in seconds on a CPU
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "seed": {kind: {} for kind in NETWORKS},
    "small": {
        "lstm": {"hidden": (32, 16), "dense": 16},
        "transformer": {"d_model": 32, "heads": 4, "layers": 2, "feed_forward": 64},
        "bilstm_attention": {"hidden": 16, "layers": 1, "attention": 16},
        "cnn": {"channels": 16},
        "cross_asset": {"d_model": 32, "heads": 4, "layers": 1, "feed_forward": 64},
    },
    "tiny": {
        "lstm": {"hidden": (8, 4), "dense": 4},
        "transformer": {"d_model": 8, "heads": 2, "layers": 1, "feed_forward": 16},
        "bilstm_attention": {"hidden": 4, "layers": 1, "attention": 4},
        "cnn": {"channels": 4},
        "cross_asset": {"d_model": 8, "heads": 2, "layers": 1, "feed_forward": 16},
    },
}


@dataclass(frozen=True)
class TrainConfig:
    models: Sequence[str] = SEED_FAMILIES
    size: str = "seed"
    window: int = 60
    epochs: int = 20
    batch_size: int = 256
    splits: int = 4
    first_test: float = 0.5
    min_history: int = 200
    cost_bps: float = 5.0
    seed: int = 7
    xgb_estimators: int = 600  # boosting rounds of every tree family (early stopping ends most)
    accelerator: str = "auto"  # a GPU when there is one, else the CPU
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32"
    num_nodes: int = 1
    progress: bool = False
    explain_samples: int = 200  # bars the registered models' SHAP values are computed on; 0 = off
    # the latest share of bars the registered models never see (nor their labels), so that they
    # can be backtested out of sample; 0 trains them on all history, for live trading
    holdout: float = 0.15
    # estimator arguments per family (e.g. the best trial of a tuning study) and where they
    # came from (study name, number of trials: promotion deflates the Sharpe ratio by it)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tuning: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # transfer learning (training.transfer): each window network family is also evaluated
    # fine-tuned per "symbol" or "sector" from its pre-trained weights, beside itself, and both
    # are registered: the fine-tuned one (qtis-lstm-ft-symbol) routes each symbol's windows to
    # its group's copy; the comparison goes to MLflow
    fine_tune: str | None = None
    fine_tune_steps: int = 50
    fine_tune_lr: float = 1e-4

    def factories(self) -> dict[str, Callable[[], Estimator]]:
        unknown = set(self.models) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown model(s) {sorted(unknown)}; choose from {FAMILIES}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose from {sorted(SIZES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {PRECISIONS}")

        def sequence(kind: str) -> Callable[[], Estimator]:
            tuned = dict(self.params.get(kind, {}))
            config = SIZES[self.size][kind] | dict(tuned.pop("config", {}))
            kwargs = {
                "window": self.window,
                "max_epochs": self.epochs,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "accelerator": self.accelerator,
                "devices": self.devices,
                "strategy": self.strategy,
                "precision": self.precision,
                "num_nodes": self.num_nodes,
                "progress": self.progress,
            } | tuned
            # a cross-sectional network learns from whole cross-sections, not loose windows
            estimator = CrossAssetModel if NETWORKS[kind].cross_sectional else SequenceModel
            return lambda: estimator(kind, config=config, **kwargs)

        made: dict[str, Callable[[], Estimator]] = {}
        for name in self.models:
            if is_tree(name):
                made[name] = functools.partial(
                    TREE_MODELS[name],
                    **{"n_estimators": self.xgb_estimators, "seed": self.seed}
                    | dict(self.params.get(name, {})),
                )
            else:
                made[name] = sequence(name)
        made |= {"zero": ZeroModel, "ridge": RidgeModel, "buy_and_hold": HistoricalMeanModel}
        return made


# what the Dagster pipeline trains with: smaller networks, fewer epochs, folds and rounds than
# `qtis train`, so that a scheduled run of every family stays short
PIPELINE = TrainConfig(size="small", epochs=5, splits=3, xgb_estimators=300)


def override_params(family: str, pairs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"dropout": 0, "lr": 1e-3}`` -> estimator arguments of ``family``: network fields go into
    its ``config``; unknown names are refused with the list of known ones."""
    if is_tree(family):
        known = {f.name for f in dataclasses.fields(TREE_MODELS[family])} - {"callbacks", "seed"}
        network: set[str] = set()
    else:
        network = {f.name for f in dataclasses.fields(NETWORKS[family].config)}
        known = {f.name for f in dataclasses.fields(SequenceModel)} - {"kind", "callbacks"}
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        if key in network:
            out.setdefault("config", {})[key] = value
        elif key in known:
            out[key] = value
        else:
            raise ValueError(
                f"unknown {family} parameter {key!r}; known: {', '.join(sorted(known | network))}"
            )
    return out


def run_training(
    url: str,
    config: TrainConfig,
    symbols: Sequence[str] | None = None,
    on_fold: Callable[[str, int], None] | None = None,
    track: bool = True,
    until: datetime | None = None,
    *,
    tracking: TrackingSettings,
) -> TrainingRun:
    """Walk-forward evaluation of every model, then (``track``) one final fit per family on all
    history (before ``until``, as it was known then), logged to MLflow (``tracking``: its store)
    and registered."""
    data = load_training_data(url, symbols, end=until)
    if not len(data):
        raise ValueError("features.training_set is empty: run `qtis features build` first")
    horizon = max(default_spec().horizons)
    factories, tuning = _with_fine_tuning(url, data, config)
    evaluation = walk_forward(data, config, on_fold, factories)
    fine_tuning = compare(evaluation, tuning) if tuning else {}
    registered: dict[str, dict[str, Any]] = {}
    finals: dict[str, Any] = {}
    if track:  # final fits run in every DDP process; MLflow only hears from rank 0
        logs = global_rank() == 0
        if logs:
            configure(url, tracking)
        final = final_split(data.ts, horizon, holdout=config.holdout)
        ends = window_ends(data, config.window, config.min_history)
        valid = np.zeros(len(data), dtype=bool)
        valid[ends] = True
        train, val = final.train[valid[final.train]], final.validation[valid[final.validation]]
        # online updates start after the last training row; trading after the last bar a
        # label of training or early stopping looked at
        trained = {
            TRAINED_THROUGH: stamp(data.ts[train].max()),
            LABEL_END: stamp(data.label_end(np.concatenate([train, val]), horizon)),
        }
        factories = config.factories()
        for family in config.models:
            if on_fold:
                on_fold(family, -1)
            model = factories[family]().fit(data, train, val)
            if not logs:
                continue
            example_rows = ends[-2:]
            if is_tree(family):
                example = data.features[example_rows]
                finals[family] = model.bundle()
            else:
                example = data.features[example_rows[:, None] + np.arange(-config.window + 1, 1)]
                finals[family] = model.bundle().compile()  # served through ONNX Runtime
            variants = [family]
            if tuning and lookup(family).fine_tunable:  # its copies, from the same weights
                variants.append(fine_tuned_name(family, tuning.group))
                copies = tuning.fine_tuned(family, model.bundle(), data, train)
                finals[variants[-1]] = copies.compile()
            for name in variants:
                registered[name] = _register(
                    url, name, evaluation, config, finals[name], example, trained,
                    (data, train),
                )  # fmt: skip
            if family in fine_tuning:
                log_fine_tuning(
                    registered[family]["run_id"], fine_tuning[family],
                    evaluation.to_dict()["models"][fine_tuning[family]["fine_tuned"]],
                )  # fmt: skip
    return TrainingRun(evaluation, registered, finals, fine_tuning)


def _register(
    url: str,
    name: str,
    evaluation: Evaluation,
    config: TrainConfig,
    bundle: Any,
    example: np.ndarray,
    trained: dict[str, str],
    fitted_on: tuple[TrainingData, np.ndarray],
) -> dict[str, Any]:
    """Explain the final ``bundle`` on the rows it was fitted on, log it to MLflow with its
    evaluation and register it (as ``name``'s qtis-* model), and save its SHAP ranking."""
    attributions = None
    if config.explain_samples > 0:
        data, train = fitted_on
        attributions = explain.explain_final(
            bundle, data, train, config.explain_samples, config.seed
        )
    info = log_family(name, evaluation, config, bundle, example, trained, attributions)
    info["example"] = example
    if attributions is not None:
        explain.save_ranking(url, info["registered"], info["version"], info["run_id"], attributions)
        info["top_features"] = attributions.ranking()[:5]
    return info


@dataclass
class TrainingRun:
    evaluation: Evaluation
    registered: dict[str, dict[str, Any]]  # family -> run id, model URI, version, metrics
    final_models: dict[str, Any]  # family -> the fitted bundle that was registered
    # network family -> pre-trained vs fine-tuned out of sample (training.transfer_report)
    fine_tuning: dict[str, Any] = field(default_factory=dict)

    def registered_info(self) -> dict[str, dict[str, Any]]:
        """What was registered, per family, without the input examples (for reports)."""
        return {
            f: {k: v for k, v in info.items() if k != "example"}
            for f, info in self.registered.items()
        }


def walk_forward(
    data: TrainingData,
    config: TrainConfig,
    on_fold: Callable[[str, int], None] | None = None,
    factories: dict[str, Callable[[], Estimator]] | None = None,
) -> Evaluation:
    """Every model of ``config`` (or ``factories``) and the baselines, by purged walk-forward
    over ``data`` (embargo: the longest label horizon): out-of-sample predictions and their
    scores."""
    splitter = PurgedWalkForward(
        n_splits=config.splits, horizon=max(data.horizons), first_test=config.first_test
    )
    return evaluate(
        data,
        factories or config.factories(),
        splitter,
        window=config.window,
        min_history=config.min_history,
        cost_bps=config.cost_bps,
        on_fold=on_fold,
    )


def _with_fine_tuning(
    url: str, data, config: TrainConfig
) -> tuple[dict[str, Callable[[], Estimator]], FineTuning | None]:
    """The models to evaluate: with ``config.fine_tune``, each network family followed by its
    fine-tuned variant (sectors read from market.instruments)."""
    factories = config.factories()
    if config.fine_tune is None:
        return factories, None
    # a cross-sectional network is not fine-tuned per group: a group's rows are not its
    # cross-sections, and its forecasts need every symbol of a bar
    networks = [m for m in config.models if lookup(m).fine_tunable]
    if config.fine_tune not in GROUPINGS or not networks:
        raise ValueError(
            f"fine-tuning needs a grouping in {GROUPINGS} (got {config.fine_tune!r}) and a "
            f"network family among the models (got {', '.join(config.models)}): tree models "
            "and cross_asset are not fine-tuned"
        )
    groups = read_sectors(url, sorted(set(data.symbols))) if config.fine_tune == "sector" else None
    return with_fine_tuning(
        factories, networks, config.fine_tune, groups, steps=config.fine_tune_steps,
        lr=config.fine_tune_lr, batch_size=config.batch_size, seed=config.seed,
        tuned=config.params,  # a variant's best trial (training.studies.with_tuned_params)
    )  # fmt: skip
