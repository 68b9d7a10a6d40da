"""One Optuna study per model family as a Dagster asset: the training assets start from its
best trial, and the trial count travels with the model (promotion deflates by it)."""

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
from training.families import FAMILIES, fine_tuned_variants
from training.tuning import PIPELINE, TuneConfig, tune


class TuningConfig(Config):
    """The pipeline's study run; defaults from ``training.tuning.PIPELINE``."""

    trials: int = PIPELINE.trials
    workers: int = PIPELINE.workers  # processes sharing the study
    size: str = PIPELINE.size
    epochs: int = PIPELINE.epochs
    window: int = PIPELINE.window
    splits: int = PIPELINE.splits  # inner walk-forward folds, all before the reported test period
    min_history: int = PIPELINE.min_history  # bars of a symbol's warm-up before its rows are used
    xgb_estimators: int = PIPELINE.xgb_estimators
    score: str = PIPELINE.score  # r2 (vs the zero forecast) or ic
    pruner: str | None = (
        None  # median, successive-halving, hyperband, none; unset: QTIS_TUNE_PRUNER
    )
    seed: int = PIPELINE.seed
    timeout: float | None = PIPELINE.timeout
    # "symbol" or "sector": search the family's fine-tune (training.transfer_tuning) in its own
    # study, qtis-<family>+ft_<grouping>, which the training asset reads with the same fine_tune
    fine_tune: str | None = None


def _tuning_asset(family: str) -> AssetsDefinition:
    @asset(
        name=f"{family}_tuning",
        group_name="tuning",
        deps=[AssetKey(["features", "training_set"])],
        description=f"Optuna study qtis-{family} on Postgres; its best trial feeds {family}_model",
    )
    def _tune(
        context: AssetExecutionContext, warehouse: WarehouseResource, config: TuningConfig
    ) -> MaterializeResult:
        tuning = warehouse.tuning()
        chosen = config.model_dump(exclude={"fine_tune"}) | {
            "pruner": config.pruner or tuning.pruner,
            "threads": tuning.threads,
        }
        try:
            studied = (
                fine_tuned_variants((family,), config.fine_tune)[0] if config.fine_tune else family
            )
        except ValueError as exc:
            raise Failure(str(exc)) from exc
        result = tune(
            warehouse.url(),
            TuneConfig(family=studied, **chosen),
            on_progress=lambda done, total: context.log.info(f"{done}/{total} trials"),
            tracking=warehouse.tracking(),
            tuning=tuning,
        )
        return MaterializeResult(
            metadata={
                "study": result.study,
                "storage": result.storage,
                "trials_total": result.total_trials,
                "trials_this_run": result.trials_run,
                "complete": result.complete,
                "pruned": result.pruned,
                "failed": result.failed,
                "best_value": result.best_value,
                "best_trial": result.best_trial,
                "best_params": result.best_params,
                "mlflow_run_id": result.mlflow_run_id or "",
                "seconds": result.seconds,
            }
        )

    return _tune


tuning_assets = [_tuning_asset(family) for family in FAMILIES]
