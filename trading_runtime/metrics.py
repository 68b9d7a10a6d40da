"""Summary figures of a run, from its equity curve and fills (conventions as in
training.metrics: simple returns per bar, Sharpe with ddof=1 and risk-free 0)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trading_runtime.book import Book
from trading_runtime.domain import OrderStatus
from training.metrics import max_drawdown, sharpe_ratio


def summary(
    book: Book, equity_curve: list[tuple[str, dict[str, float]]], bars_per_year: float = 252.0
) -> dict[str, Any]:
    """Per account and in total: return, CAGR, volatility, Sharpe, drawdown, costs, activity."""
    out: dict[str, Any] = {}
    names = list(book.accounts)
    for name in [*names, "total"]:
        accounts = names if name == "total" else [name]
        equity = np.array([sum(e[a] for a in accounts) for _, e in equity_curve])
        initial = sum(book.accounts[a].initial for a in accounts)
        curve = np.r_[initial, equity]
        returns = np.diff(curve) / curve[:-1]
        years = len(returns) / bars_per_year
        final = float(curve[-1])
        orders = [o for o in book.orders.values() if o.account in accounts]
        filled = [o for o in orders if o.filled > 0]
        traded = sum(o.filled * o.avg_price for o in filled)
        out[name] = {
            "initial": initial,
            "final_equity": round(final, 2),
            "total_return": final / initial - 1,
            "cagr": (final / initial) ** (1 / years) - 1 if years > 0 and final > 0 else math.nan,
            "volatility": float(np.std(returns, ddof=1) * math.sqrt(bars_per_year))
            if len(returns) > 1
            else math.nan,
            "sharpe": sharpe_ratio(returns, bars_per_year),
            "max_drawdown": max_drawdown(returns),
            "fees": round(sum(book.accounts[a].fees for a in accounts), 2),
            "slippage": round(sum(book.accounts[a].slippage for a in accounts), 2),
            "orders": len(orders),
            "denied": sum(o.status == OrderStatus.DENIED for o in orders),
            "filled_orders": len(filled),
            "turnover": float(traded / np.mean(curve) / years) if years > 0 else math.nan,
            "bars": len(returns),
        }
    return out
