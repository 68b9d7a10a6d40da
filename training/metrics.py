"""Out-of-sample evaluation of forecasts: errors, the volatility forecast's losses, and a
simple trading rule after costs. The statistics (intervals, IC, Sharpe, drawdown, CAGR) are
``quant``'s, under its conventions: returns per bar, Sharpe = mean / std (ddof=1) x
sqrt(periods_per_year) with risk-free 0, drawdowns on compounded simple returns; costs are
charged on the change in position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from quant.conventions import Conventions
from quant.intervals import (
    Interval,
    directional_accuracy,
    information_coefficients,
    sharpe_interval,
)
from quant.performance import cagr, max_drawdown

SCORES = ("r2", "ic")  # what a tuning study maximizes


def objective_score(pred: np.ndarray, true: np.ndarray, ts: np.ndarray, kind: str) -> float:
    """Out-of-sample score, averaged over horizons: ``r2`` = 1 - SSE/SSE of the zero forecast
    (the random walk), ``ic`` = information coefficient."""
    values = []
    for i in range(true.shape[1]):
        ok = np.isfinite(true[:, i])
        p, y = pred[ok, i].astype(np.float64), true[ok, i].astype(np.float64)
        if kind == "r2":
            values.append(1.0 - np.sum((p - y) ** 2) / max(np.sum(y**2), 1e-300))
        else:
            ic = information_coefficients(p, y, ts[ok])["ic"].value
            values.append(ic if np.isfinite(ic) else 0.0)
    return float(np.mean(values))


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    ok = ~np.isnan(pred) & ~np.isnan(true)
    return float(np.mean((pred[ok] - true[ok]) ** 2)) if ok.any() else math.nan


def volatility_forecast(
    forecast: np.ndarray, realized: np.ndarray, reference: np.ndarray, overlap: int = 1
) -> dict[str, object]:
    """How good a volatility forecast was: RMSE and QLIKE against the realized volatility
    (QLIKE = log f^2 + r^2 / f^2, Patton's loss that is robust to a noisy realized proxy; compare
    it between forecasts only), and how often it called the direction of change from
    ``reference`` (the trailing volatility known when the forecast was made) right."""
    ok = np.isfinite(forecast) & np.isfinite(realized) & np.isfinite(reference) & (forecast > 0)
    f, r, ref = forecast[ok], realized[ok], reference[ok]
    direction = directional_accuracy(f - ref, r - ref, overlap)
    return {
        "rmse": float(np.sqrt(np.mean((f - r) ** 2))) if ok.any() else math.nan,
        "qlike": float(np.mean(np.log(f**2) + r**2 / f**2)) if ok.any() else math.nan,
        "direction": direction["accuracy"],
        "direction_p_value": direction["p_value"],
        "n": int(ok.sum()),
    }


@dataclass(frozen=True)
class StrategyResult:
    returns: np.ndarray  # per bar, after costs
    times: np.ndarray
    sharpe: Interval
    max_drawdown: float
    turnover: float  # mean one-way change in gross position per bar
    annual_return: float

    def summary(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("returns")
        out.pop("times")
        return out


def strategy(
    signal: np.ndarray,
    next_log_return: np.ndarray,
    symbols: np.ndarray,
    ts: np.ndarray,
    *,
    cost_bps: float = 5.0,
    long_short: bool = True,
    periods_per_year: float = 252,
) -> StrategyResult:
    """Trade the sign of ``signal`` (long/short, or long/flat) equally weighted across the
    symbols of each bar, hold one bar, pay ``cost_bps`` per unit of position traded."""
    frame = pd.DataFrame({"symbol": symbols, "ts": ts, "s": signal, "r": next_log_return})
    frame = frame.dropna().sort_values(["ts", "symbol"])
    position = np.sign(frame["s"]) if long_short else (frame["s"] > 0).astype(float)
    counts = frame.groupby("ts")["symbol"].transform("size")
    frame["w"] = position / counts
    weights = frame.pivot(index="ts", columns="symbol", values="w").fillna(0.0)
    simple = np.expm1(frame.pivot(index="ts", columns="symbol", values="r")).fillna(0.0)
    gross = (weights * simple).sum(axis=1).to_numpy()
    traded = weights.diff().abs().sum(axis=1).to_numpy()
    traded[0] = np.abs(weights.iloc[0]).sum()
    net = gross - traded * cost_bps / 1e4
    return StrategyResult(
        returns=net,
        times=weights.index.to_numpy(),
        sharpe=sharpe_interval(net, periods_per_year),
        max_drawdown=max_drawdown(net),
        turnover=float(traded.mean()) if len(traded) else math.nan,
        annual_return=cagr(net, Conventions(periods_per_year=periods_per_year)),
    )
