"""Summary figures of a run, from its equity curve and the book: the return-based metrics of
``quant.performance`` under its stated conventions (simple returns per bar,
risk-free 0, sample standard deviation; QTIS_ANALYTICS_*), plus costs and activity."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quant.conventions import Conventions
from quant.performance import curve_returns, performance
from trading_runtime.book import Book
from trading_runtime.domain import OrderStatus


def summary(
    book: Book, equity_curve: list[tuple[str, dict[str, float]]], conventions: Conventions
) -> dict[str, Any]:
    """Per account and in total: return, CAGR, volatility, Sharpe, Sortino, Calmar, drawdown
    and its duration, hit rate, profit factor, VaR/ES, costs, activity and turnover (traded
    notional over mean equity, a year). ``conventions``: built by the entry point, its
    ``periods_per_year`` the engine's bars per year."""
    bars_per_year = conventions.periods_per_year
    out: dict[str, Any] = {}
    names = list(book.accounts)
    live = [a for a in names if not book.accounts[a].shadow] or names  # shadows: hypothetical
    for name in [*names, "total"]:
        accounts = live if name == "total" else [name]
        equity = np.array([sum(e[a] for a in accounts) for _, e in equity_curve])
        initial = sum(book.accounts[a].initial for a in accounts)
        returns = curve_returns(initial, equity)
        years = len(returns) / bars_per_year
        final = float(equity[-1]) if len(equity) else initial
        orders = [o for o in book.orders.values() if o.account in accounts]
        filled = [o for o in orders if o.filled > 0]
        traded = sum(o.filled * o.avg_price for o in filled)
        out[name] = {
            "initial": initial,
            "final_equity": round(final, 2),
            **performance(returns, conventions=conventions),
            "total_return": final / initial - 1,
            "fees": round(sum(book.accounts[a].fees for a in accounts), 2),
            "slippage": round(sum(book.accounts[a].slippage for a in accounts), 2),
            "orders": len(orders),
            "denied": sum(o.status == OrderStatus.DENIED for o in orders),
            "filled_orders": len(filled),
            "turnover": float(traded / np.mean(np.r_[initial, equity]) / years)
            if years > 0
            else math.nan,
            "bars": len(returns),
        }
    return out
