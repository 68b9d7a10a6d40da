"""Value at Risk and Expected Shortfall of a portfolio of assets (fractions for weights,
currency for notionals) and of pre-trade scenario P&L, on top of the series estimators of
``quant.risk``. Monte Carlo: multivariate normal or t with a Ledoit-Wolf shrunk covariance
(Cholesky); the other methods run on the portfolio's historical return series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.covariance import LedoitWolf

from quant.risk import (
    Method,
    RiskEstimate,
    check_request,
    compound,
    empirical_var_es,
    finite,
    normal_var_es,
    risk_measures,
)


def portfolio_var_es(
    returns_matrix,
    weights_or_notional,
    level: float = 0.95,
    horizon: int = 1,
    method: Method = "historical",
    paths: int = 10_000,
    seed: int = 0,
    *,
    distribution: Literal["normal", "t"] = "normal",
    df: float | None = None,
    **options,
) -> RiskEstimate:
    """VaR and ES of a portfolio of assets whose per-bar simple returns are the columns of
    ``returns_matrix`` (bars x assets, oldest first), held in ``weights_or_notional`` (per
    asset; a Series is aligned to a DataFrame's columns). The result is in the units of the
    holdings: a fraction for weights, currency for notionals. Holdings are fixed over the
    horizon (no rebalancing). Monte Carlo: multivariate normal, or t with ``df`` degrees of
    freedom (None: fitted to the portfolio's historical returns); other methods run on the
    portfolio's historical return series (``options`` go to them)."""
    frame, w = _matrix(returns_matrix), _holdings(returns_matrix, weights_or_notional)
    check_request(level, horizon, method)
    if method == "monte-carlo":
        if paths < 2:
            raise ValueError(f"paths must be at least 2, got {paths}")
        return _portfolio_monte_carlo(frame, w, level, horizon, paths, seed, distribution, df)
    if method == "historical":
        return empirical_var_es(compound(frame, horizon) @ w, level)
    if method == "parametric" and not options.get("cornish_fisher"):
        mean = frame.mean(axis=0) @ w * horizon
        sd = math.sqrt(max(w @ _covariance(frame) @ w, 0.0) * horizon)
        return normal_var_es(mean, sd, level)
    return risk_measures(frame @ w, level, horizon, method, **options)


def scenario_risk(pnl: np.ndarray, level: float) -> RiskEstimate:
    """Historical VaR and ES of scenario P&L (no validation: for the pre-trade hot path)."""
    return empirical_var_es(pnl, level)


class ScenarioPnL:
    """What one account's exposure would have made in each bar of a return window: the window's
    rows times the signed notional per symbol. Built once a bar in O(bars x symbols) and moved
    per approved order in O(bars), so a VaR/ES limit costs O(bars) per order. A symbol without
    a column, or a bar without a return, counts as no move."""

    def __init__(
        self, returns: np.ndarray, columns: Mapping[str, int], values: Mapping[str, float]
    ) -> None:
        self.returns, self.columns = returns, columns
        notional = np.zeros(returns.shape[1])
        for symbol, value in values.items():
            if symbol in columns:
                notional[columns[symbol]] += value
        self.pnl = returns @ notional

    def with_change(self, symbol: str, delta: float) -> np.ndarray:
        """The scenario P&L with ``delta`` more notional in ``symbol``."""
        j = self.columns.get(symbol)
        return self.pnl if j is None or delta == 0 else self.pnl + self.returns[:, j] * delta

    def add(self, symbol: str, delta: float) -> None:
        self.pnl = self.with_change(symbol, delta)


# --- portfolios -----------------------------------------------------------------------------


def _covariance(frame: np.ndarray) -> np.ndarray:
    return LedoitWolf().fit(frame).covariance_


def _portfolio_monte_carlo(
    frame: np.ndarray,
    w: np.ndarray,
    level: float,
    horizon: int,
    paths: int,
    seed: int,
    distribution: str,
    df: float | None,
) -> RiskEstimate:
    if distribution not in ("normal", "t"):
        raise ValueError(f"distribution must be normal or t, got {distribution!r}")
    mean, chol = frame.mean(axis=0), np.linalg.cholesky(_covariance(frame))
    if distribution == "t" and df is None:
        df = stats.t.fit(frame @ w)[0]
    if distribution == "t" and df <= 2:
        raise ValueError(f"t degrees of freedom {df:.2f} <= 2 have no variance: pass df > 2")
    rng = np.random.default_rng(seed)
    growth = np.ones((paths, frame.shape[1]))
    for _ in range(horizon):
        shocks = rng.standard_normal((paths, frame.shape[1])) @ chol.T
        if distribution == "t":  # a scale mixture with the same covariance
            shocks *= np.sqrt((df - 2) / rng.chisquare(df, (paths, 1)))
        growth *= 1 + mean + shocks
    return empirical_var_es((growth - 1) @ w, level)


# --- shared pieces --------------------------------------------------------------------------


def _matrix(returns_matrix) -> np.ndarray:
    frame = np.asarray(returns_matrix, dtype=float)
    if frame.ndim != 2 or len(frame) < 2:
        raise ValueError(f"returns_matrix must be (bars >= 2, assets), got shape {frame.shape}")
    return finite(frame, "returns_matrix")


def _holdings(returns_matrix, weights_or_notional) -> np.ndarray:
    held = weights_or_notional
    if isinstance(returns_matrix, pd.DataFrame) and isinstance(held, pd.Series | Mapping):
        held = pd.Series(held, dtype=float)
        missing = sorted(set(held.index) - set(returns_matrix.columns))
        if missing:
            raise ValueError(f"holdings in {', '.join(map(str, missing))} have no returns")
        held = held.reindex(returns_matrix.columns, fill_value=0.0)
    w = np.asarray(held, dtype=float)
    n = np.shape(returns_matrix)[1]
    if w.shape != (n,):
        raise ValueError(f"weights_or_notional must have one value per asset ({n}), got {w.shape}")
    return finite(w, "weights_or_notional")
