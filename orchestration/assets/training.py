"""One Dagster asset per model family, downstream of the dbt training set and its tuning study:
walk-forward evaluation next to the baselines, then the final model logged and registered in
MLflow; and the ensemble of the three seed families (stacked, voted or selected)."""

import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    asset,
)

from orchestration.resources import WarehouseResource
from training.ensemble import run_ensemble
from training.families import FAMILIES, SEED_FAMILIES
from training.runner import PIPELINE, TrainConfig, run_training
from training.studies import with_tuned_params


class TrainingConfig(Config):
    """The pipeline's training run; defaults from ``training.runner.PIPELINE``."""

    size: str = PIPELINE.size  # seed | small | tiny (network sizes)
    epochs: int = PIPELINE.epochs
    window: int = PIPELINE.window
    splits: int = PIPELINE.splits
    cost_bps: float = PIPELINE.cost_bps
    seed: int = PIPELINE.seed
    xgb_estimators: int = PIPELINE.xgb_estimators
    tuned: bool = True  # start from the best trial of the family's study, when there is one
    accelerator: str = PIPELINE.accelerator  # auto: a GPU when the step's machine has one
    devices: int = 1
    precision: str = PIPELINE.precision  # 32, or bf16-mixed / 16-mixed on a GPU
    # "ddp" re-runs the launching command in every process: inside Dagster use "ddp_spawn"
    strategy: str = PIPELINE.strategy
    explain_samples: int = PIPELINE.explain_samples  # bars SHAP explains; 0 = off
    # latest share of bars the registered model never sees (labels included): the reference
    # backtests trade them out of sample; 0 trains on all history, for live trading
    holdout: float = PIPELINE.holdout
    # "symbol" or "sector": a window network family is also evaluated fine-tuned per group from
    # its pre-trained weights (training.transfer), and registered beside it (qtis-lstm-ft-symbol)
    fine_tune: str | None = PIPELINE.fine_tune
    fine_tune_steps: int = PIPELINE.fine_tune_steps


def report_path(home: Path, family: str) -> Path:
    return (home / "reports" / "training" / f"{family}.json").resolve()


def _training_asset(family: str) -> AssetsDefinition:
    @asset(
        name=f"{family}_model",
        group_name="training",
        deps=[AssetKey(["features", "training_set"]), AssetKey(f"{family}_tuning")],
        description=f"{family}: purged walk-forward OOS evaluation, registered as qtis-{family}",
    )
    def _train(
        context: AssetExecutionContext, warehouse: WarehouseResource, config: TrainingConfig
    ) -> MaterializeResult:
        if config.strategy == "ddp" and config.devices != 1:
            raise Failure(
                "strategy 'ddp' starts the launching command again in each process, which "
                "inside Dagster is the step worker: use strategy 'ddp_spawn' here, or run "
                "`qtis train --devices N --strategy ddp` from a shell"
            )
        settings = config.model_dump(exclude={"tuned"})
        train_config = TrainConfig(models=(family,), **settings)
        if config.tuned:
            train_config = with_tuned_params(warehouse.url(), train_config, warehouse.tuning())
        run = run_training(
            warehouse.url(),
            train_config,
            on_fold=lambda name, k: context.log.info(f"{name}: fold {k}"),
            tracking=warehouse.tracking(),
        )
        report = run.evaluation.to_dict() | {"fine_tuning": run.fine_tuning}
        path = report_path(warehouse.settings().home, family)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str))
        ours = report["models"][family]
        info = run.registered[family]
        return MaterializeResult(
            metadata={
                "registered_model": info["registered"],
                "version": str(info["version"]),
                "mlflow_run_id": info["run_id"],
                "oos_ic_h1": ours["horizons"]["h1"]["ic"]["value"],
                "oos_sharpe": ours["trading"]["sharpe"]["value"],
                "baseline_sharpe_buy_and_hold": report["models"]["buy_and_hold"]["trading"][
                    "sharpe"
                ]["value"],
                "report": str(path),
                "tuning_trials": int(train_config.tuning.get(family, {}).get("trials", 0)),
                "top_features": ", ".join(info.get("top_features", [])),
                **_fine_tuned_metadata(report, family, run.registered),
            }
        )

    return _train


def _fine_tuned_metadata(report: dict, family: str, registered: dict) -> dict:
    """With fine-tuning: where the fine-tuned variant is registered, its h1 IC and Sharpe, and
    the verdict."""
    section = report["fine_tuning"].get(family)
    if not section:
        return {}
    tuned = report["models"][section["fine_tuned"]]
    info = registered[section["fine_tuned"]]
    return {
        "fine_tuned_registered_model": info["registered"],
        "fine_tuned_version": str(info["version"]),
        "fine_tuned_oos_ic_h1": tuned["horizons"]["h1"]["ic"]["value"],
        "fine_tuned_oos_sharpe": tuned["trading"]["sharpe"]["value"],
        "fine_tuning": section["verdict"],
    }


training_assets = [_training_asset(family) for family in FAMILIES]


class EnsembleConfig(Config):
    regime_feature: str = "hv_20"  # the volatility regime that switches the weights
    # stack (least squares, nested by fold), vote (inverse recent error) or select (the best
    # recent member per regime); the other two are scored next to it in the report
    combiner: str = "stack"
    lookback: int = 63  # bars of known labels the vote and the selection weigh


@asset(
    group_name="training",
    deps=[AssetKey(f"{family}_model") for family in SEED_FAMILIES],
    description="qtis-ensemble: the seed families combined on their out-of-fold predictions "
    "(stacked, voted or selected), with its weights over time in mlops.ensemble_weights",
)
def ensemble_model(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: EnsembleConfig
) -> MaterializeResult:
    run = run_ensemble(
        warehouse.url(),
        SEED_FAMILIES,
        regime_feature=config.regime_feature,
        tracking=warehouse.tracking(),
        combiner=config.combiner,
        lookback=config.lookback,
    )
    report = run.result.evaluation.to_dict()
    report["ensemble_weights"] = run.bundle.stack.weights()
    path = report_path(warehouse.settings().home, "ensemble")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    models = report["models"]
    info = run.registered
    return MaterializeResult(
        metadata={
            "registered_model": info["registered"],
            "version": str(info["version"]),
            "mlflow_run_id": info["run_id"],
            "members": ", ".join(f"{f} v{v}" for f, v in run.bundle.versions.items()),
            "combiner": config.combiner,
            **{
                f"oos_ic_h1_{name}": m["horizons"]["h1"]["ic"]["value"]
                for name, m in models.items()
                if name != "zero"
            },
            **{f"oos_sharpe_{name}": m["trading"]["sharpe"]["value"] for name, m in models.items()},
            "report": str(path),
        }
    )
