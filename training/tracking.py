"""MLflow on the project's Postgres: every walk-forward evaluation and final model is a run, the
final models are registered as qtis-lstm / qtis-transformer / qtis-xgboost.

The tracking store is a database next to the warehouse (``mlflow`` on the same server), used
in-process by default, artifacts under ``QTIS_HOME/mlruns``; with ``QTIS_MLFLOW_TRACKING_URI``
naming a tracking server (``qtis mlflow server``, :mod:`training.tracking_server`) the same calls
go over HTTP and the artifacts to the server's store. The entry point builds the
:class:`TrackingSettings` and passes them down.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from core.errors import ConfigError
from training import artifacts, explain
from training.evaluate import BASELINES, Evaluation
from training.explain import Attributions
from training.families import REGISTERED
from training.lineage import ARTIFACT_SHA256, SPEC_HASH, TRAINED_THROUGH, UPDATE_OF, VersionMeta
from training.portable import Portable, write
from training.settings import TrackingSettings
from training.tracking_server import backend_store, is_local, is_server
from transforms.spec import SPEC_PATH
from warehouse.db import exclusive

REGISTERED_NAMES = REGISTERED | {"ensemble": "qtis-ensemble"}
CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(url: str, settings: TrackingSettings) -> str:
    """The MLflow store: QTIS_MLFLOW_TRACKING_URI (a database, or a tracking server), or a
    database beside the warehouse."""
    if is_server(settings.tracking_uri):
        return settings.tracking_uri
    return backend_store(url, settings)


def configure(url: str, settings: TrackingSettings) -> str:
    """Point MLflow at our store and experiment; returns the experiment id. A new experiment
    keeps its artifacts under ``settings.home``/mlruns when MLflow is used in process, and in
    the server's artifact store through a tracking server; through a server, an experiment
    whose artifacts are a path (on one machine) is refused."""
    uri = tracking_uri(url, settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # another machine may be creating the store's tables or the experiment at the same moment
    with exclusive(uri, "qtis_mlflow_store"):
        if mlflow.get_experiment_by_name(settings.experiment) is None:
            if is_server(uri):
                mlflow.create_experiment(settings.experiment)  # the server's default: its proxy
            else:
                artifacts = (settings.home / "mlruns").resolve()
                artifacts.mkdir(parents=True, exist_ok=True)
                mlflow.create_experiment(settings.experiment, artifacts.as_uri())
    experiment = mlflow.set_experiment(settings.experiment)
    if is_server(uri) and is_local(experiment.artifact_location):
        raise ConfigError(
            f"MLflow experiment {settings.experiment!r} keeps its artifacts at "
            f"{experiment.artifact_location}, a path: through the tracking server {uri} new "
            "models would stay on the machine that trained them; set QTIS_MLFLOW_EXPERIMENT to "
            "a new experiment (it gets the server's artifact store), and run the server with "
            "proxied artifacts (qtis mlflow server)"
        )
    return experiment.experiment_id


def holder(client, alias: str) -> tuple[str, str] | None:
    """(registered name, version) holding ``alias`` among the qtis-* models, if any (one version
    across all of them holds each alias)."""
    found = [
        (m.name, str(m.aliases[alias]))
        for m in client.search_registered_models("name LIKE 'qtis-%'")
        if alias in (m.aliases or {})
    ]
    if len(found) > 1:
        raise ValueError(
            f"several models hold @{alias} ({', '.join(f'{n} v{v}' for n, v in found)}): "
            f"remove the alias from all but one"
        )
    return found[0] if found else None


def spec_hash() -> str:
    return hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def load_bundle(name: str, version: str | int) -> Any:
    """The fitted bundle of registered model ``name`` version ``version``, read from its
    portable files once their digest matched the one taken at registration."""
    client = MlflowClient()
    found = client.get_model_version(name, str(version))
    meta = VersionMeta.from_tags(client.get_run(found.run_id).data.tags, found.tags)
    model, _ = artifacts.load_verified(found.source, f"{name} v{version}", meta.artifact_sha256)
    return model.bundle


# what a registered model needs to load; stated, because MLflow's inference loads the model in
# a subprocess to watch its imports (10 s and more per model)
MODEL_REQUIREMENTS = (
    "mlflow", "numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "onnx", "onnxruntime",
    "torch", "lightning",
)  # fmt: skip
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")  # the pyfunc, logged as code


def model_requirements() -> list[str]:
    """:data:`MODEL_REQUIREMENTS` pinned to the versions installed here."""
    return [f"{package}=={metadata.version(package)}" for package in MODEL_REQUIREMENTS]


def log_model(name: str, bundle: Any, example: np.ndarray, features: Sequence[str]):
    """Log ``bundle`` as the active run's model and register it as ``name``: its portable files
    (no pickle) behind a pyfunc logged as code, with signature and input example from
    ``example`` (windows when 3-D, feature rows when 2-D); the new version is tagged with the
    sha256 of its artifacts as stored."""
    windows = example.ndim == 3
    model = Portable(
        bundle, "windows" if windows else "features", tuple(features),
        example.shape[1] if windows else 1,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        write(model, Path(tmp) / "qtis")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"qtis": str(Path(tmp) / "qtis")},
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=name,
            pip_requirements=model_requirements(),
        )
    version = str(info.registered_model_version)
    source = MlflowClient().get_model_version(name, version).source
    MlflowClient().set_model_version_tag(
        name, version, ARTIFACT_SHA256, artifacts.artifact_digest(source)
    )
    return info


def log_family(
    family: str,
    evaluation: Evaluation,
    config: Any,
    bundle: Any,
    example: np.ndarray,
    tags: dict[str, str] | None = None,
    attributions: Attributions | None = None,
) -> dict[str, Any]:
    """One run for one model family: params, per-fold and OOS metrics, lineage, the walk-forward
    predictions (artifact oof_predictions.parquet; the baselines' on the same bars in
    oof_baselines.parquet), SHAP explanations of the final model (under explanations/), the final
    model (with signature and input example) registered under its qtis-* name."""
    data = evaluation.data
    result = evaluation.results[family]
    report = evaluation.to_dict()["models"][family]
    with mlflow.start_run(run_name=family) as run:
        skip = ("models", "progress", "params", "tuning")
        mlflow.log_params({k: str(v) for k, v in asdict(config).items() if k not in skip})
        mlflow.log_params({f"model_{k}": str(v) for k, v in config.params.get(family, {}).items()})
        tuning = config.tuning.get(family)
        lineage = VersionMeta(
            family=family,
            trained_through=None,  # the runner and the ensemble tag these
            label_end=None,
            symbols=tuple(sorted(set(data.symbols))),
            spec_hash=spec_hash(),
            # promotion deflates the Sharpe ratio by the number of trials behind a choice
            tuning_trials=int(tuning["trials"]) if tuning else 0,
            update_of=None,
        )
        mlflow.set_tags(
            lineage.to_tags()
            | {
                "git_commit": git_commit(),
                "data_start": str(data.ts.min()),
                "data_end": str(data.ts.max()),
                "evaluation": "purged walk-forward, out of sample only",
                "tuning_study": tuning["study"] if tuning else "none",
            }
        )
        for fold in result.fold_metrics:
            for key, value in fold.items():
                if key.startswith(("mse_h", "ic_h", "hit_rate_h")) and value is not None:
                    mlflow.log_metric(f"fold_{key}", value, step=fold["fold"])
        summary = _oos_summary(report)
        mlflow.log_metrics({k: float(v) for k, v in summary.items() if v is not None})
        mlflow.log_dict({"features": list(data.feature_names)}, "features.json")
        mlflow.log_dict(report, "oos_report.json")
        _log_predictions(evaluation, family)
        if tags:
            mlflow.set_tags(tags)
        if attributions is not None:
            explain.log_to_mlflow(attributions)
        info = log_model(REGISTERED_NAMES[family], bundle, example, data.feature_names)
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "registered": REGISTERED_NAMES[family],
        "version": info.registered_model_version,
        "metrics": summary,
    }


def _oos_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The out-of-sample metrics a run logs (and `qtis train` lists): per horizon, and trading."""
    summary = {}
    for h, values in report["horizons"].items():
        summary[f"oos_mse_{h}"] = values["mse"]
        for key in ("ic", "rank_ic", "hit_rate"):
            if values[key] and values[key]["value"] is not None:
                summary[f"oos_{key}_{h}"] = values[key]["value"]
    trading = report["trading"]
    return summary | {
        "oos_sharpe": trading["sharpe"]["value"],
        "oos_max_drawdown": trading["max_drawdown"],
        "oos_turnover": trading["turnover"],
    }


def _log_predictions(evaluation: Evaluation, family: str) -> None:
    """The family's walk-forward predictions, and the baselines' on the same test bars (what
    promotion must beat), as parquet artifacts of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        oof = Path(tmp) / "oof_predictions.parquet"
        evaluation.out_of_fold(family).to_parquet(oof, index=False)
        mlflow.log_artifact(str(oof))
        baselines = [
            evaluation.out_of_fold(b).assign(baseline=b)
            for b in BASELINES
            if b in evaluation.results
        ]
        if baselines:
            path = Path(tmp) / "oof_baselines.parquet"
            pd.concat(baselines, ignore_index=True).to_parquet(path, index=False)
            mlflow.log_artifact(str(path))


def log_update(
    family: str,
    bundle: Any,
    example: np.ndarray,
    params: dict[str, Any],
    tags: dict[str, str],
    metrics: dict[str, float],
    report: dict[str, Any],
    feature_names: tuple[str, ...],
    attributions: Attributions | None = None,
) -> dict[str, Any]:
    """One run for an online update (training.online): params, tags and holdout metrics, the
    update report, and the updated model registered as the next version of its qtis-* name;
    the version carries the run's ``promotion`` and ``update_of`` tags too."""
    name = REGISTERED_NAMES[family]
    with mlflow.start_run(run_name=f"{family}-update") as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.set_tags({"git_commit": git_commit(), SPEC_HASH: spec_hash()} | tags)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_dict({"features": list(feature_names)}, "features.json")
        mlflow.log_dict(report, "update_report.json")
        if attributions is not None:
            explain.log_to_mlflow(attributions)
        info = log_model(name, bundle, example, feature_names)
    client = MlflowClient()
    for key in ("promotion", UPDATE_OF, TRAINED_THROUGH):
        if key in tags:
            client.set_model_version_tag(name, str(info.registered_model_version), key, tags[key])
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "registered": name,
        "version": info.registered_model_version,
        "metrics": metrics,
    }
