"""The conventions every metric is computed under, in one place, so a report can state them and
a caller can change them without touching the formulas. A plain frozen dataclass: reading them
from the environment (``QTIS_ANALYTICS_*``) is the caller's business."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BOOTSTRAPS = ("stationary", "moving-block")


@dataclass(frozen=True)
class Conventions:
    """Defaults match empyrical's daily conventions, so its numbers and ours agree."""

    returns: Literal["simple per bar"] = "simple per bar"  # equity(t) / equity(t-1) - 1
    periods_per_year: float = 252.0  # bars per year (daily: 252)
    risk_free: float = 0.0  # annual rate; per bar (1 + rf)^(1 / periods) - 1
    ddof: int = 1  # of the standard deviation (1: sample)
    var_level: float = 0.95  # confidence of VaR and ES
    rolling_window: int = 63  # bars of the rolling Sharpe and volatility
    bootstrap: Literal["stationary", "moving-block"] = "stationary"
    bootstrap_paths: int = 1000  # resampled return paths
    bootstrap_block: float | None = None  # (mean) block length in bars; None: Politis-White
    ci_level: float = 0.95  # of the bootstrap intervals
    seed: int = 0  # of the bootstrap's random generator

    def __post_init__(self) -> None:
        checks = {
            "periods_per_year > 0": self.periods_per_year > 0,
            "risk_free >= -1": self.risk_free >= -1,
            "ddof 0 or 1": self.ddof in (0, 1),
            "0 < var_level < 1": 0 < self.var_level < 1,
            "rolling_window >= 2": self.rolling_window >= 2,
            f"bootstrap one of {BOOTSTRAPS}": self.bootstrap in BOOTSTRAPS,
            "bootstrap_paths >= 10": self.bootstrap_paths >= 10,
            "bootstrap_block > 0 or None": self.bootstrap_block is None or self.bootstrap_block > 0,
            "0 < ci_level < 1": 0 < self.ci_level < 1,
        }
        broken = [rule for rule, ok in checks.items() if not ok]
        if broken:
            raise ValueError(f"conventions need {', '.join(broken)}")

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


PER_PERIOD = Conventions(periods_per_year=1.0)
"""Per-period (not annualized) statistics with risk-free 0, as the significance tests need."""
