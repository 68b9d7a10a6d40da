"""Online learning as a Dagster asset: fold the bars labelled since the champion (or a named
family) was trained into it and register the next version, pending promotion.

Downstream of the training set and the model assets, so a run that also retrains updates the
fresh models; the daily pipeline leaves it out (it retrains in full), ``online_update_job`` runs
it alone. With no newly labelled bars it logs why and materializes nothing."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    asset,
)

from orchestration.resources import WarehouseResource
from training.families import FAMILIES
from training.online import NothingToUpdate, update_model


class UpdateConfig(Config):
    family: str = ""  # "" = the champion's family, else the most recently registered one
    rounds: int = 50  # xgboost: boosting rounds to add
    steps: int = 50  # networks: fine-tuning optimizer steps (max)
    lr: float = 1e-4  # networks: fine-tuning learning rate
    holdout: float = 0.2  # share of the new bars held out (after a purge) to compare


@asset(
    group_name="online",
    deps=[AssetKey(["features", "training_set"]), *(AssetKey(f"{f}_model") for f in FAMILIES)],
    output_required=False,
    description="Online update of the champion family on newly labelled bars: the next "
    "qtis-<family> version, promotion pending",
)
def model_update(
    context: AssetExecutionContext, warehouse: WarehouseResource, config: UpdateConfig
):
    try:
        result = update_model(
            warehouse.url(),
            config.family or None,
            tracking=warehouse.tracking(),
            rounds=config.rounds,
            steps=config.steps,
            lr=config.lr,
            holdout=config.holdout,
        )
    except NothingToUpdate as exc:
        context.log.info(str(exc))
        return
    except ValueError as exc:
        raise Failure(str(exc)) from exc
    base, new = result.metrics["base"], result.metrics["updated"]
    metrics = {
        f"holdout_{key}_{which}": values[key]
        for which, values in (("base", base), ("updated", new))
        for key in ("mse_h1", "ic_h1", "mse_mean", "ic_mean")
        if values[key] is not None
    }
    yield MaterializeResult(
        metadata={
            "registered_model": result.registered,
            "base_version": result.base_version,
            "new_version": result.new_version,
            "mlflow_run_id": result.run_id,
            "promotion": "pending",
            "rows_used": result.rows_used,
            "holdout_rows": result.holdout_rows,
            "trained_through_before": result.trained_through_before,
            "trained_through_after": result.trained_through_after,
            **metrics,
        }
    )
