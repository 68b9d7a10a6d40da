"""Typed settings of monitoring: what counts as drift (``QTIS_DRIFT_*``), what a drift run
calls for (``QTIS_MONITOR_*``) and where alerts go (``QTIS_ALERT_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class DriftSettings(QtisSettings):
    """What counts as drift (``QTIS_DRIFT_*``)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_DRIFT_")

    current_bars: int = Field(20, ge=5, description="the recent bars compared with training")
    reference_rows: int = Field(5000, ge=100, description="training rows sampled as reference")
    max_symbols: int = Field(
        200,
        ge=1,
        description="symbols the check reads, at most: a larger universe is a seeded sample of"
        " this many, so its memory and time do not grow with the number of symbols",
    )
    predict_rows: int = Field(
        4096,
        ge=1,
        description="windows the champion forecasts in one call (memory: rows x window x"
        " features x 4 bytes)",
    )
    calibration_windows: int = Field(
        500,
        ge=0,
        description="training-period windows that calibrate the thresholds and the scores, at"
        " most (a period of fewer bars: one window ending on each; 0: no calibration, the"
        " fixed threshold for every column)",
    )
    calibration_rows: int = Field(
        2000,
        ge=100,
        description="of the training rows before a calibration window, the sample it is tested"
        " against (at most)",
    )
    calibration_quantile: float = Field(
        1.0, gt=0, le=1, description="of the test (the score) over those windows: its threshold"
    )
    calibration_margin: float = Field(
        1.25, ge=1, description="times that quantile: a column's threshold"
    )
    top_columns: int = Field(
        3, ge=1, description="the scores average the standardized excess of this many columns"
    )
    score_margin: float = Field(
        1.0,
        ge=0,
        description="calibration standard deviations added to that quantile: a score's limit"
        " (a year of training understates how far a stable market strays: see README,"
        " Monitoring)",
    )
    method: str = Field(
        "wasserstein", description="Evidently's per-column test (wasserstein, psi, ks…)"
    )
    threshold: float = Field(
        0.1, gt=0, description="of the test, at least (Wasserstein in reference sd)"
    )
    drift_share: float = Field(0.3, gt=0, le=1, description="drifted features that flag data")
    ic_floor: float = Field(0.0, description="recent pooled rank IC below it: decayed")
    attribution_floor: float = Field(0.5, description="SHAP ranking Spearman below it: drifted")
    explain_samples: int = Field(100, ge=0, description="recent bars SHAP explains; 0: skip")
    error_ratio: float = Field(
        1.5, gt=0, description="recent mean absolute error over the training period's: worse"
    )
    calendar: bool = Field(
        False,
        description="test calendar features too (a window shorter than their cycle"
        " always differs from a year of training)",
    )
    levels: bool = Field(
        False,
        description="test features in price or volume units too (moving averages, OBV, pivots:"
        " they move with every trend, so they would flag one)",
    )
    seed: int = 7


class ActionSettings(QtisSettings):
    """``QTIS_MONITOR_*``"""

    model_config = SettingsConfigDict(env_prefix="QTIS_MONITOR_")

    retrain_cooldown_hours: float = Field(
        24.0, ge=0, description="no second drift-triggered retrain within this time"
    )
    demote_on_decay: bool = Field(True, description="roll the champion back when it decayed")
    shadow_stream: str | None = Field(
        None,
        description="live stream whose shadow book trades the challenger"
        " (`qtis trade paper --challenger-shadow`); unset: shadow_sensor does nothing",
    )
    shadow_significance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="one-sided p of 'the shadow trades better' that replaces the champion",
    )
    shadow_min_bars: int = Field(60, ge=10, description="bars compared before any verdict")
    retrain_families: tuple[str, ...] = Field(
        (),
        description="model families a drift-triggered retrain trains (empty: all of them"
        " and the ensemble)",
    )


class AlertSettings(QtisSettings):
    """``QTIS_ALERT_*``"""

    model_config = SettingsConfigDict(env_prefix="QTIS_ALERT_")

    log_file: Path | None = Field(None, description="default $QTIS_HOME/alerts.jsonl")
    webhook_url: str | None = Field(
        None, description="POSTed each alert as JSON", json_schema_extra={"secret": True}
    )
    dedup_hours: float = Field(6.0, ge=0, description="one alert per key within this time")
    timeout: float = Field(5.0, gt=0, description="seconds for the webhook")
    queue_size: int = Field(
        1000, ge=1, description="a trading run's alerts waiting for the webhook; more are dropped"
    )
