"""Attribution and exposure by asset class: what each class (equity, future, fx, option...)
earned over the run and how much of the book it was, from the journal's holdings.

A class's P&L is the sum over its symbols of the value change plus the cash its fills moved
(fees included), in the account's currency; over all classes that is the change of equity
(the test checks it). Contribution is that P&L over the starting equity, so the classes'
contributions add up to the run's summed return."""

from __future__ import annotations

from typing import Any

from trading_runtime.analytics.positions import Holdings
from trading_runtime.instruments import Instrument

UNKNOWN = "unknown"


def asset_class_of(symbols, instruments: dict[str, Instrument]) -> dict[str, str]:
    return {s: instruments[s].asset_class if s in instruments else UNKNOWN for s in symbols}


def by_asset_class(
    holdings: Holdings, instruments: dict[str, Instrument], initial: float
) -> dict[str, dict[str, Any]]:
    """Per asset class: ``pnl``, ``contribution`` (pnl / initial equity), mean and largest
    ``gross`` and mean ``net`` exposure (fractions of equity), the ``symbols`` traded."""
    pnl = holdings.pnl
    if pnl.empty:
        return {}
    classes = asset_class_of(pnl.columns, instruments)
    grouped_pnl = pnl.T.groupby(classes).sum().T
    values = holdings.values.reindex(columns=pnl.columns).fillna(0.0)
    by_class = values.T.groupby(classes)
    gross = by_class.apply(lambda v: v.abs().sum()).T.div(holdings.equity, axis=0)
    net = by_class.sum().T.div(holdings.equity, axis=0)
    out = {}
    for name in sorted(grouped_pnl.columns):
        total = float(grouped_pnl[name].sum())
        out[name] = {
            "pnl": total,
            "contribution": total / initial if initial else float("nan"),
            "gross": float(gross[name].mean()),
            "max_gross": float(gross[name].max()),
            "net": float(net[name].mean()),
            "symbols": sorted(s for s, c in classes.items() if c == name),
        }
    return out
