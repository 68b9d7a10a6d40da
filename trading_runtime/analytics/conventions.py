"""The analytics conventions a user sets (``QTIS_ANALYTICS_*``), read from the environment and
handed to the formulas of ``quant`` as its plain ``Conventions``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings
from quant.conventions import Conventions

_DEFAULT = Conventions()


class ConventionsSettings(QtisSettings):
    """Defaults are ``quant.conventions.Conventions``'s (empyrical's daily conventions)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_ANALYTICS_")

    returns: Literal["simple per bar"] = Field(
        _DEFAULT.returns, description="equity(t) / equity(t-1) - 1, the first bar from capital"
    )
    periods_per_year: float = Field(
        _DEFAULT.periods_per_year, gt=0, description="bars per year (daily: 252)"
    )
    risk_free: float = Field(
        _DEFAULT.risk_free, ge=-1, description="annual rate; per bar (1 + rf)^(1 / periods) - 1"
    )
    ddof: int = Field(
        _DEFAULT.ddof, ge=0, le=1, description="of the standard deviation (1: sample)"
    )
    var_level: float = Field(_DEFAULT.var_level, gt=0, lt=1, description="confidence of VaR and ES")
    rolling_window: int = Field(
        _DEFAULT.rolling_window, ge=2, description="bars of the rolling Sharpe and volatility"
    )
    bootstrap: Literal["stationary", "moving-block"] = _DEFAULT.bootstrap
    bootstrap_paths: int = Field(
        _DEFAULT.bootstrap_paths, ge=10, description="resampled return paths"
    )
    bootstrap_block: float | None = Field(
        _DEFAULT.bootstrap_block,
        gt=0,
        description="(mean) block length in bars; None: Politis-White automatic",
    )
    ci_level: float = Field(_DEFAULT.ci_level, gt=0, lt=1, description="of the bootstrap intervals")
    seed: int = Field(_DEFAULT.seed, description="of the bootstrap's random generator")

    def conventions(self) -> Conventions:
        return Conventions(**self.model_dump())


def conventions(**overrides) -> Conventions:
    """The conventions of ``QTIS_ANALYTICS_*``, with ``overrides`` (e.g. the engine's bars per
    year) taking precedence over the environment."""
    return ConventionsSettings(**overrides).conventions()
