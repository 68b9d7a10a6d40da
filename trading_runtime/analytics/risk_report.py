"""The risk of what a run holds at its end, as a risk desk reads it: VaR and ES by every method
(95/99%, 1 and 10 bars) on the assets' whole return history, the worst historical windows
replayed on the holdings, user-defined shocks, exposure by sector and whether correlations
between the assets have broken down lately."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from trading_runtime.analytics.positions import Holdings
from trading_runtime.instruments import Instrument
from trading_runtime.portfolio.correlation import correlation_breakdown
from trading_runtime.portfolio.risk import portfolio_var_es
from trading_runtime.portfolio.stress import apply_shocks, historical_stress, sector_exposure
from trading_runtime.settings import RiskReportSettings

METHODS = ("historical", "parametric", "monte-carlo", "evt")
LEVELS = (0.95, 0.99)
HORIZONS = (1, 10)


def risk_report(
    holdings: Holdings,
    asset_returns: pd.DataFrame,
    instruments: dict[str, Instrument],
    settings: RiskReportSettings,
) -> dict[str, Any]:
    """``asset_returns``: per-bar simple returns, a column per symbol, all the history there is.
    The holdings are the last bar's that held anything, as weights of equity."""
    s = settings
    weights = holdings.weights.fillna(0.0)
    invested = weights.abs().sum(axis=1) > 0
    if not invested.any():
        return {"as_of": None, "note": "the run never held a position: no portfolio risk"}
    if asset_returns.empty:
        return {"as_of": None, "note": "no bars of the held symbols: no portfolio risk"}
    as_of = weights.index[invested.to_numpy()][-1]
    held = weights.loc[as_of]
    held = held[held != 0]
    history = asset_returns.reindex(columns=held.index).loc[:as_of].dropna(how="all")
    report: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "weights": held.to_dict(),
        "history": {"bars": len(history), "start": history.index[0].isoformat()},
        "var_es": _var_es(history, held, s),
        "stress": _stress(history, held, s),
        "shocks": _shocks(held, instruments, s),
        "sectors": sector_exposure(held.to_dict(), instruments).to_dict(orient="index"),
    }
    universe = asset_returns.loc[:as_of].dropna(axis=1, how="all")
    try:
        alert = correlation_breakdown(
            universe.dropna(),
            s.correlation_recent,
            s.correlation_baseline,
            s.correlation_threshold,
        )
        report["correlation"] = {
            "recent": alert.recent, "baseline": alert.baseline, "change": alert.change,
            "alert": alert.alert, "message": alert.message,
        }  # fmt: skip
    except ValueError as exc:  # one asset, or too short a history
        report["correlation"] = {"alert": False, "message": f"not computed: {exc}"}
    return report


def _var_es(history: pd.DataFrame, held: pd.Series, s: RiskReportSettings) -> list[dict]:
    rows = []
    frame = history.fillna(0.0)
    for method in METHODS:
        for level in LEVELS:
            for horizon in HORIZONS:
                row = {"method": method, "level": level, "horizon": horizon}
                try:
                    var, es = portfolio_var_es(
                        frame, held, level, horizon, method, paths=s.paths, seed=s.seed
                    )
                    row |= {"var": var, "es": es}
                except ValueError as exc:  # EVT: too few exceedances in a short history
                    row |= {"var": math.nan, "es": math.nan, "note": str(exc)}
                rows.append(row)
    return rows


def _stress(history: pd.DataFrame, held: pd.Series, s: RiskReportSettings) -> list[dict]:
    try:
        table = historical_stress(history, held.to_dict(), s.stress_windows, s.stress_horizon)
    except ValueError:
        return []
    return [
        {"start": r.start.isoformat(), "end": r.end.isoformat(), "pnl": r.pnl}
        for r in table[["start", "end", "pnl"]].itertuples(index=False)
    ]


def _shocks(
    held: pd.Series, instruments: dict[str, Instrument], s: RiskReportSettings
) -> list[dict]:
    rows = []
    for name, move in s.shocks.items():
        try:
            result = apply_shocks(held.to_dict(), {name: move}, instruments)
            rows.append({"shock": name, "move": move, "pnl": result.pnl})
        except ValueError as exc:  # names nothing held now
            rows.append({"shock": name, "move": move, "pnl": math.nan, "note": str(exc)})
    return rows
