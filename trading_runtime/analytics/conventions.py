"""The conventions every metric is computed under, in one place, so a report can state them and
a user can change them (``QTIS_ANALYTICS_*``) without touching the formulas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from core.settings import QtisSettings


class Conventions(QtisSettings):
    """Defaults match empyrical's daily conventions, so its numbers and ours agree."""

    model_config = SettingsConfigDict(env_prefix="QTIS_ANALYTICS_")

    returns: Literal["simple per bar"] = Field(
        "simple per bar", description="equity(t) / equity(t-1) - 1, the first bar from capital"
    )
    periods_per_year: float = Field(252.0, gt=0, description="bars per year (daily: 252)")
    risk_free: float = Field(
        0.0, ge=-1, description="annual rate; per bar (1 + rf)^(1 / periods) - 1"
    )
    ddof: int = Field(1, ge=0, le=1, description="of the standard deviation (1: sample)")
    var_level: float = Field(0.95, gt=0, lt=1, description="confidence of VaR and ES")
    rolling_window: int = Field(63, ge=2, description="bars of the rolling Sharpe and volatility")
    bootstrap: Literal["stationary", "moving-block"] = "stationary"
    bootstrap_paths: int = Field(1000, ge=10, description="resampled return paths")
    bootstrap_block: float | None = Field(
        None, gt=0, description="(mean) block length in bars; None: Politis-White automatic"
    )
    ci_level: float = Field(0.95, gt=0, lt=1, description="of the bootstrap intervals")
    seed: int = Field(0, description="of the bootstrap's random generator")

    @property
    def risk_free_per_bar(self) -> float:
        return (1 + self.risk_free) ** (1 / self.periods_per_year) - 1

    def describe(self) -> list[str]:
        """The conventions as sentences, for a report's conventions box."""
        block = "automatic (Politis-White)" if self.bootstrap_block is None else (
            f"{self.bootstrap_block:g} bars"
        )  # fmt: skip
        return [
            f"Returns: {self.returns} of the equity curve (the first from the starting capital).",
            f"Annualization: {self.periods_per_year:g} periods per year; CAGR compounds them.",
            f"Risk-free rate: {self.risk_free:.2%} a year"
            f" ({self.risk_free_per_bar:.6%} a bar), subtracted in Sharpe, Sortino and alpha.",
            f"Standard deviation: ddof={self.ddof}"
            + (" (sample)" if self.ddof == 1 else " (population)")
            + "; Sortino's downside deviation is the root mean square of the shortfalls below"
            " the risk-free rate over all bars.",
            "Max drawdown: of the compounded curve from its running peak (negative); duration"
            " in bars below a previous peak. Calmar = CAGR / |max drawdown|.",
            "Hit rate and profit factor: over bars with a non-zero return.",
            f"VaR and ES: historical, {self.var_level:.0%}, one bar, as positive loss fractions.",
            f"Intervals: {self.ci_level:.0%} percentile intervals of a {self.bootstrap}"
            f" bootstrap of the bar returns, {self.bootstrap_paths} paths, block {block},"
            f" seed {self.seed}.",
            f"Rolling Sharpe and volatility: {self.rolling_window} bars.",
        ]
