"""Typed settings of training: the promotion gates (``QTIS_PROMOTION_*``), the MLflow store
(``QTIS_MLFLOW_*``, its artifacts under ``QTIS_HOME``) and its tracking server, and the Optuna
store (``QTIS_TUNE_*``; the older ``QTIS_OPTUNA_*`` names still work)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class PromotionSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_PROMOTION_")

    significance: float = Field(0.05, gt=0, lt=1, description="one-sided level of the paired test")
    horizon: int = Field(1, ge=1, description="label horizon whose losses the paired test compares")
    min_deflated_sharpe: float = Field(0.95, ge=0, le=1, description="deflated Sharpe threshold")
    latency_budget_ms: float = Field(10.0, gt=0, description="p99 single-window latency budget")
    latency_samples: int = Field(200, ge=10, description="single-window calls the probe times")
    max_pbo: float | None = Field(None, ge=0, le=1, description="PBO gate; unset = report only")
    pbo_blocks: int = Field(10, ge=2, description="CSCV blocks (even)")


class TrackingSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_MLFLOW_")

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI: a database, or http://host:port of a tracking server"
        " (qtis mlflow server); unset = database 'mlflow' on our server",
    )
    database: str = Field(default="mlflow", description="Database for MLflow's tables")
    experiment: str = Field(default="qtis", description="Experiment that runs go to")
    home: Path = Field(
        default=Path(".qtis"),
        validation_alias=AliasChoices("QTIS_HOME"),
        description="The warehouse's directory for local state: new experiments keep their"
        " artifacts under its mlruns/ (without a tracking server)",
    )


class TrackingServerSettings(QtisSettings):
    """``qtis mlflow server``: where it binds and where it keeps the artifacts it proxies."""

    model_config = SettingsConfigDict(env_prefix="QTIS_MLFLOW_")

    artifacts_destination: str | None = Field(
        default=None,
        description="where the tracking server keeps artifacts (a directory or an object-store"
        " URI such as s3://bucket/path); unset = QTIS_HOME/mlartifacts",
    )
    server_host: str = Field(default="127.0.0.1", description="address the tracking server binds")
    server_port: int = Field(default=5000, ge=1, le=65535, description="tracking server port")
    server_workers: int = Field(default=2, ge=1, description="tracking server worker processes")
    server_open: bool = Field(
        default=False,
        description="let the tracking server bind a non-loopback interface: it has no login,"
        " so anyone who reaches it may read, register and replace models",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="Host names the server answers besides localhost and private addresses"
        " (MLflow's --allowed-hosts, comma-separated)",
    )


Pruner = Literal["median", "successive-halving", "hyperband", "none"]
PRUNERS: tuple[str, ...] = get_args(Pruner)


class TuningSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_TUNE_")

    pruner: Pruner = Field(
        default="successive-halving",
        description="pruner of `qtis tune` and the pipeline's studies (docs/benchmarks.md"
        " compares them on a market with a planted signal)",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="threads per tuning worker (torch, XGBoost); unset: the machine's cores"
        " shared out among the workers (on a busy small machine 1 is often faster)",
    )

    storage: str | None = Field(
        default=None,
        validation_alias=AliasChoices("QTIS_TUNE_STORAGE", "QTIS_OPTUNA_STORAGE"),
        description="Optuna RDB storage URL; unset = database 'optuna' on our server",
    )
    database: str = Field(
        default="optuna",
        validation_alias=AliasChoices("QTIS_TUNE_DATABASE", "QTIS_OPTUNA_DATABASE"),
        description="Database for Optuna's tables",
    )
