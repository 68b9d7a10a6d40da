"""Typed settings of training: the promotion gates (``QTIS_PROMOTION_*``), the MLflow store
(``QTIS_MLFLOW_*``, its artifacts under ``QTIS_HOME``) and the Optuna store (``QTIS_TUNE_*``;
the older ``QTIS_OPTUNA_*`` names still work)."""

from __future__ import annotations

from pathlib import Path

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
        default=None, description="MLflow tracking URI; unset = database 'mlflow' on our server"
    )
    database: str = Field(default="mlflow", description="Database for MLflow's tables")
    experiment: str = Field(default="qtis", description="Experiment that runs go to")
    home: Path = Field(
        default=Path(".qtis"),
        validation_alias=AliasChoices("QTIS_HOME"),
        description="The warehouse's directory for local state: new experiments keep their"
        " artifacts under its mlruns/",
    )


class TuningSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_TUNE_")

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
