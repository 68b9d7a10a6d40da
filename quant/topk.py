"""A long-only top-k portfolio of forecasts: at each rebalance, equal weights in the k symbols
with the highest forecast, held (and drifting with prices) until the next one, costs charged on
every unit of weight traded. Its benchmark is the same rule with every symbol (the equal-weight
universe), so the information ratio says what the ranking added, after the same costs.

Pure functions over wide frames (bars as rows, symbols as columns); the statistics are
``quant.performance`` and ``quant.bootstrap``'s, under their conventions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from quant.bootstrap import bootstrap_intervals
from quant.conventions import Conventions
from quant.performance import DEFAULT


def top_k_weights(scores: pd.DataFrame, k: int, every: int = 1) -> pd.DataFrame:
    """Target weights on each rebalance bar (the first bar, then every ``every`` bars; other
    bars are NaN: hold). The k highest scores get 1/k each; symbols tied at the k-th place
    share the slots left equally (a forecast that ranks nothing, e.g. a constant, buys the
    whole universe); a NaN score is a symbol that cannot be bought on that bar. With fewer
    than k symbols available, all of them are held equally."""
    if k < 1 or every < 1:
        raise ValueError(f"top-k needs k >= 1 and every >= 1, got k={k}, every={every}")
    values = scores.to_numpy(dtype=float)
    out = np.full(values.shape, np.nan)
    for t in range(0, len(values), every):
        row = values[t]
        ok = ~np.isnan(row)
        weights = np.zeros(len(row))
        slots = min(k, int(ok.sum()))
        if slots:
            kth = np.sort(row[ok])[::-1][slots - 1]
            above = ok & (row > kth)
            tied = ok & (row == kth)
            weights[above] = 1.0 / slots
            weights[tied] = (slots - above.sum()) / slots / tied.sum()
        out[t] = weights
    return pd.DataFrame(out, index=scores.index, columns=scores.columns)


def portfolio_returns(
    targets: pd.DataFrame, returns: pd.DataFrame, cost_bps: float = 5.0
) -> pd.DataFrame:
    """Per bar: gross and net (after ``cost_bps`` per unit of weight traded) simple return and
    the turnover of a portfolio that takes ``targets`` on the bars where they are given (rows
    of NaN: hold) and lets weights drift with prices in between. ``returns[t]`` is each
    symbol's simple return from bar t to t+1 (NaN counts as 0: no price, no move); the first
    bar buys in from cash."""
    if not targets.index.equals(returns.index) or not targets.columns.equals(returns.columns):
        raise ValueError("targets and returns must share their bars (index) and symbols (columns)")
    target = targets.to_numpy(dtype=float)
    move = np.nan_to_num(returns.to_numpy(dtype=float))
    n = len(target)
    gross, turnover = np.zeros(n), np.zeros(n)
    drifted = np.zeros(target.shape[1])
    for t in range(n):
        weights = drifted if np.isnan(target[t]).all() else np.nan_to_num(target[t])
        turnover[t] = np.abs(weights - drifted).sum()
        gross[t] = weights @ move[t]
        grown = weights * (1 + move[t])
        drifted = grown / grown.sum() if grown.sum() > 0 else np.zeros_like(grown)
    net = gross - turnover * cost_bps / 1e4
    return pd.DataFrame({"gross": gross, "net": net, "turnover": turnover}, index=targets.index)


def top_k_report(
    scores: pd.DataFrame,
    returns: pd.DataFrame,
    k: int,
    *,
    every: int = 1,
    cost_bps: float = 5.0,
    conventions: Conventions = DEFAULT,
) -> dict[str, Any]:
    """The top-k portfolio of ``scores`` after costs beside its benchmark (equal weight in every
    symbol with a score, same rebalance bars and costs): annual return (CAGR), Sharpe and max
    drawdown of each, and the information ratio (annualized mean / std of the net return over
    the benchmark's), each with its block-bootstrap interval (``conventions``)."""
    portfolio = portfolio_returns(top_k_weights(scores, k, every), returns, cost_bps)
    benchmark = portfolio_returns(top_k_weights(scores, scores.shape[1], every), returns, cost_bps)
    active = portfolio["net"] - benchmark["net"]
    out: dict[str, Any] = {"k": k, "every": every, "cost_bps": cost_bps, "bars": len(portfolio)}
    for name, series in (("portfolio", portfolio), ("benchmark", benchmark)):
        stats = bootstrap_intervals(series["net"].to_numpy(), conventions)
        out[name] = {
            "annual_return": stats["cagr"],
            "sharpe": stats["sharpe"],
            "max_drawdown": stats["max_drawdown"],
            "turnover": float(series["turnover"].mean()) if len(series) else math.nan,
        }
    out["information_ratio"] = bootstrap_intervals(active.to_numpy(), conventions)["sharpe"]
    out["active_return"] = float(active.mean() * conventions.periods_per_year)
    return out
