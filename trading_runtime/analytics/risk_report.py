"""The risk of what a run holds at its end, as a risk desk reads it: VaR and ES by every method
(95/99%, 1 and 10 bars) on the assets' whole return history, a t copula of the assets among
them, how each method's VaR would have fared out of sample on these weights lately (Kupiec and
Christoffersen backtests), the worst historical windows replayed on the holdings, user-defined
shocks, exposure by sector and whether correlations between the assets have broken down
lately."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant.copula import fit_t_copula, simulate_portfolio
from quant.risk import empirical_var_es
from quant.var_backtest import rolling_backtest
from trading_runtime.analytics.positions import Holdings
from trading_runtime.instruments import Instrument
from trading_runtime.options import OptionDesk, OptionMarket, contract_of
from trading_runtime.portfolio.correlation import correlation_breakdown
from trading_runtime.portfolio.risk import portfolio_var_es
from trading_runtime.portfolio.stress import apply_shocks, historical_stress, sector_exposure
from trading_runtime.settings import RiskReportSettings

METHODS = ("historical", "parametric", "monte-carlo", "evt", "copula")
LEVELS = (0.95, 0.99)
HORIZONS = (1, 10)


def risk_report(
    holdings: Holdings,
    asset_returns: pd.DataFrame,
    instruments: dict[str, Instrument],
    settings: RiskReportSettings,
    *,
    option_market: OptionMarket | None = None,
    spots: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``asset_returns``: per-bar simple returns, a column per symbol, all the history there is.
    The holdings are the last bar's that held anything, as weights of equity. Options held
    add a ``greeks`` section, valued with ``option_market`` (``OptionMarket.of`` the run's
    RuntimeSettings) at the last bar's closes: an option's from its value, an underlying's
    from its own value when held, else from ``spots``."""
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
        "var_backtest": _var_backtest(history, held, s),
        "stress": _stress(history, held, s),
        "shocks": _shocks(held, instruments, s),
        "sectors": sector_exposure(held.to_dict(), instruments).to_dict(orient="index"),
    }
    greeks = _greeks(holdings, as_of, instruments, option_market, spots or {})
    if greeks is not None:
        report["greeks"] = greeks
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
    for method in METHODS[:-1]:
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
    return rows + _copula_var_es(frame, held, s)


def _copula_var_es(frame: pd.DataFrame, held: pd.Series, s: RiskReportSettings) -> list[dict]:
    """The t copula fitted once, simulated once per horizon, read at both levels."""
    rows = [{"method": "copula", "level": lv, "horizon": h} for lv in LEVELS for h in HORIZONS]
    try:
        model = fit_t_copula(frame)
        simulated = {h: simulate_portfolio(model, held, h, s.paths, s.seed) for h in HORIZONS}
    except ValueError as exc:  # too short a history, or an asset that never moved
        return [row | {"var": math.nan, "es": math.nan, "note": str(exc)} for row in rows]
    for row in rows:
        var, es = empirical_var_es(simulated[row["horizon"]], row["level"])
        row |= {"var": var, "es": es}
    return rows


def _var_backtest(history: pd.DataFrame, held: pd.Series, s: RiskReportSettings) -> dict:
    """Every method's rolling 1-bar VaR on these weights over the last bars where every held
    asset has a return, tested for coverage and independence."""
    frame = history.dropna()
    settings = {"window": s.backtest_window, "refit": s.backtest_refit,
                "paths": min(s.paths, s.backtest_paths)}  # fmt: skip
    if len(frame) <= s.backtest_window:
        note = f"not computed: {len(frame)} bars, the backtest needs more than {s.backtest_window}"
        return settings | {"bars": 0, "rows": [], "note": note}
    table = rolling_backtest(frame, held, LEVELS[::-1], last=s.backtest_bars, seed=s.seed,
                             **settings)  # fmt: skip
    rows = table.replace({np.nan: None}).to_dict(orient="records")
    return settings | {"bars": int(table["observations"].max()), "rows": rows}


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


def _greeks(
    holdings: Holdings,
    as_of: pd.Timestamp,
    instruments: dict[str, Instrument],
    market: OptionMarket | None,
    spots: Mapping[str, float],
) -> dict[str, Any] | None:
    """The option book's greeks at ``as_of`` per underlying and in total (None: no option
    held): delta in shares and currency, 1% gamma and vega per volatility point in currency,
    theta per calendar day; and each option's implied volatility."""
    quantities = holdings.quantities.loc[as_of]
    values = holdings.values.loc[as_of]
    contracts = {s: contract_of(instruments[s]) for s in quantities.index
                 if quantities[s] and s in instruments}  # fmt: skip
    options = {s: c for s, c in contracts.items() if c is not None and c.expiry > as_of.date()}
    if not options:
        return None
    if market is None:
        return {"note": "not computed: pass option_market (OptionMarket.of(RuntimeSettings))"}
    prices = {s: float(values[s]) / (float(quantities[s]) * instruments[s].multiplier)
              for s in quantities.index if quantities[s] and s in values}  # fmt: skip
    underlyings = sorted({c.underlying for c in options.values()})
    missing = [u for u in underlyings if u not in prices and u not in spots]
    if missing:
        return {"note": f"not computed: no price of {', '.join(missing)} (pass spots=)"}
    prices = {**spots, **prices}
    desk = OptionDesk(instruments, [*options, *underlyings], market)
    held = {s: float(quantities.get(s, 0.0)) for s in (*options, *underlyings)}
    day = as_of.date()

    def row(greeks, underlying: str | None) -> dict[str, float]:
        out = {"delta_units": greeks.delta_units.get(underlying, math.nan)} if underlying else {}
        return out | {
            "delta": greeks.delta_currency, "gamma_1pct": greeks.gamma_currency,
            "vega_per_point": greeks.vega / 100, "theta_per_day": greeks.theta_per_day,
            "rho": greeks.rho,
        }  # fmt: skip

    by_underlying = {u: row(desk.greeks(held, prices, day, only=u), u) for u in underlyings}
    valued = [desk.value(s, prices[s], prices[c.underlying], day) for s, c in options.items()]
    return {
        "as_of": as_of.isoformat(),
        "inputs": {"rate": market.rate, "dividend_yield": market.dividend_yield},
        "options": [_option_row(v, held[v.symbol]) for v in valued],
        "by_underlying": by_underlying,
        "total": row(desk.greeks(held, prices, day), None),
    }


def _option_row(valued, quantity: float) -> dict[str, Any]:
    return {"symbol": valued.symbol, "quantity": quantity, "price": valued.price,
            "spot": valued.spot, "volatility": valued.volatility, "implied": valued.implied,
            "delta": valued.greeks.delta}  # fmt: skip
