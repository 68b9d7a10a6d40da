"""Typed settings of the prediction service, read from ``QTIS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class ServingSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_")

    serve_host: str = Field("127.0.0.1", description="address `qtis serve` binds")
    serve_port: int = Field(3100, ge=1, le=65535, description="port `qtis serve` binds")
    serve_max_windows: int = Field(256, ge=1, description="windows one /predict may carry")
    serve_batching: bool = Field(True, description="adaptive batching of /predict")
    serve_max_batch_size: int = Field(256, ge=1, description="windows one adaptive batch holds")
    serve_model_threads: int = Field(
        1, ge=1, description="threads per model call: a server's parallelism is its requests"
    )
    serve_ab_share: float = Field(
        0.0, ge=0, le=1, description="share of /predict requests the challenger answers (A/B)"
    )
    serve_reload_seconds: float = Field(
        10.0, ge=0, description="how often the service checks the aliases; 0 = only on reload"
    )
    serve_shadow_log: bool = Field(True, description="log every served and shadow prediction")
    serve_seed: int = Field(7, description="seed of the A/B split")
    api_token: str | None = Field(
        None, description="bearer token with every role; unset (and no token file) = open API"
    )
    api_token_file: Path | None = Field(
        None, description="YAML or JSON mapping token -> role (predict | admin) or role list"
    )
    api_rate_limit: float = Field(
        100.0, gt=0, description="sustained requests per second allowed per token"
    )
    api_rate_burst: int = Field(200, ge=1, description="requests a token may send in a burst")
    serve_audit_log: Path | None = Field(
        None, description="admin audit log file; unset = QTIS_HOME/logs/serving-audit.log"
    )
