"""Typed settings of the prediction service, read from ``QTIS_*`` environment variables.

Closed by default: the service binds loopback, and serving another interface needs tokens or an
explicit ``QTIS_API_OPEN`` (checked where it starts, :func:`serving.auth.check_exposure`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings

TOKEN_MIN_LENGTH = 16  # for QTIS_API_TOKEN and every token of QTIS_API_TOKEN_FILE
MIB = 1024 * 1024


class ServingSettings(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_")

    serve_host: str = Field(
        "127.0.0.1",
        description="address the service binds (qtis serve, bentoml serve, the Bento)",
    )
    serve_port: int = Field(
        3100, ge=1, le=65535, description="port the service binds, however started"
    )
    serve_workers: int = Field(
        1,
        ge=1,
        description="worker processes of the service, each with its models and batcher: at"
        " most the cores it may use",
    )
    serve_max_windows: int = Field(256, ge=1, description="windows one /predict may carry")
    serve_max_bars: int = Field(
        512, ge=1, description="bars one window may carry (a window is trimmed to the model's)"
    )
    serve_max_body_bytes: int = Field(
        32 * MIB, ge=1024, description="largest request body; a bigger one is a 413 unread"
    )
    serve_max_concurrency: int = Field(
        64, ge=1, description="requests a worker handles at once; more are answered 429"
    )
    serve_max_queued_windows: int = Field(
        4096, ge=1, description="windows waiting for the model; more are answered 429"
    )
    serve_batching: bool = Field(True, description="adaptive batching of /predict")
    serve_trace_predict: bool = Field(
        False,
        description="BentoML opens OpenTelemetry spans for /predict too: they cost about half"
        " of an .npy request's CPU and go nowhere unless a tracing exporter is configured",
    )
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
        None,
        description=f"bearer token with every role (>= {TOKEN_MIN_LENGTH} characters); unset"
        " (and no token file) = open API, served on loopback only unless QTIS_API_OPEN",
    )
    api_token_file: Path | None = Field(
        None, description="YAML or JSON mapping token -> role (predict | admin) or role list"
    )
    api_rate_limit: float = Field(
        100.0, gt=0, description="sustained requests per second allowed per token"
    )
    api_rate_burst: int = Field(200, ge=1, description="requests a token may send in a burst")
    api_anonymous_rate_limit: float = Field(
        5.0, gt=0, description="requests per second per client address without a known token"
    )
    api_anonymous_rate_burst: int = Field(
        20, ge=1, description="burst per client address without a known token"
    )
    api_open: bool = Field(
        False,
        description="serve without tokens on a non-loopback interface: anyone who reaches it"
        " may predict, reload and roll back",
    )
    serve_audit_log: Path | None = Field(
        None, description="admin audit log file; unset = QTIS_HOME/logs/serving-audit.log"
    )

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, token: str | None) -> str | None:
        """The same floor as a token file's tokens: a short token is guessed."""
        if token is not None and len(token) < TOKEN_MIN_LENGTH:
            raise ValueError(
                f"QTIS_API_TOKEN has {len(token)} characters; a token needs at least "
                f"{TOKEN_MIN_LENGTH}: make one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe())'`"
            )
        return token
