"""One Dagster asset per model family, downstream of the dbt training set: walk-forward
evaluation next to the baselines, then the final model logged and registered in MLflow."""

import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    asset,
)

from orchestration.resources import WarehouseResource
from training.runner import FAMILIES, TrainConfig, run_training


class TrainingConfig(Config):
    size: str = "small"  # seed | small | tiny (network sizes)
    epochs: int = 5
    window: int = 60
    splits: int = 3
    cost_bps: float = 5.0
    seed: int = 7
    xgb_estimators: int = 300


def report_path(home: Path, family: str) -> Path:
    return (home / "reports" / "training" / f"{family}.json").resolve()


def _training_asset(family: str) -> AssetsDefinition:
    @asset(
        name=f"{family}_model",
        group_name="training",
        deps=[AssetKey(["features", "training_set"])],
        description=f"{family}: purged walk-forward OOS evaluation, registered as qtis-{family}",
    )
    def _train(
        context: AssetExecutionContext, warehouse: WarehouseResource, config: TrainingConfig
    ) -> MaterializeResult:
        run = run_training(
            warehouse.url(),
            TrainConfig(models=(family,), **config.model_dump()),
            on_fold=lambda name, k: context.log.info(f"{name}: fold {k}"),
        )
        report = run.evaluation.to_dict()
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
            }
        )

    return _train


training_assets = [_training_asset(family) for family in FAMILIES]
