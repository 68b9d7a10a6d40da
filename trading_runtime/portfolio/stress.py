"""Stress tests of today's holdings: the worst windows of history replayed on them, shocks a
user names (a symbol, a sector, everything), and the exposure per sector those shocks act on.

Holdings are signed notionals per symbol (or weights: every P&L is then a fraction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from trading_runtime.instruments import Instrument

UNKNOWN_SECTOR = "unknown"


@dataclass(frozen=True)
class ShockResult:
    pnl: float
    by_symbol: dict[str, float]  # each holding's P&L
    applied: dict[str, float]  # the shock each holding got


def historical_stress(
    returns: pd.DataFrame, holdings: Mapping[str, float], worst: int = 5, horizon: int = 10
) -> pd.DataFrame:
    """The ``worst`` non-overlapping ``horizon``-bar windows of ``returns`` (dates x symbols,
    simple returns) for the current holdings, held through each window without rebalancing:
    first and last bar of the window, its P&L and each window's return per held symbol. A
    missing return counts as no move (a symbol not yet listed did not trade)."""
    missing = sorted(set(holdings) - set(returns.columns))
    if missing:
        raise ValueError(f"no return history for {', '.join(missing)}")
    if worst < 1 or horizon < 1:
        raise ValueError(f"worst and horizon must be >= 1, got {worst}, {horizon}")
    if len(returns) < horizon:
        raise ValueError(f"{len(returns)} bars are fewer than one window of {horizon}")
    symbols = list(holdings)
    frame = returns[symbols].fillna(0.0).to_numpy()
    moves = np.prod(1 + sliding_window_view(frame, horizon, axis=0), axis=-1) - 1
    pnl = moves @ np.array([holdings[s] for s in symbols], dtype=float)
    picked: list[int] = []
    for i in np.argsort(pnl, kind="stable"):
        if all(abs(i - j) >= horizon for j in picked):
            picked.append(int(i))
            if len(picked) == worst:
                break
    rows = {
        "start": returns.index[picked],
        "end": returns.index[[i + horizon - 1 for i in picked]],
        "pnl": pnl[picked],
    }
    table = pd.DataFrame(rows)
    return pd.concat([table, pd.DataFrame(moves[picked], columns=symbols)], axis=1)


def apply_shocks(
    holdings: Mapping[str, float],
    shocks: Mapping[str, float],
    sectors: Mapping[str, str | Instrument] | None = None,
) -> ShockResult:
    """P&L of instantaneous price shocks, e.g. ``{"AAPL": -0.2, "sector:tech": -0.1, "all":
    -0.05}``: each holding takes the most specific shock that names it (its symbol, else its
    sector, else "all"); shocks do not add up."""
    sector_of = sector_map(sectors or {})
    known = set(sector_of.values())
    for key in shocks:
        sector = key.removeprefix("sector:") if key.startswith("sector:") else None
        if not (key == "all" or key in holdings or (sector is not None and sector in known)):
            raise ValueError(
                f"shock {key!r} names no holding: use a held symbol, 'sector:<name>' with a"
                f" sector of the holdings ({', '.join(sorted(known)) or 'none given'}) or 'all'"
            )
    applied, by_symbol = {}, {}
    for symbol, value in holdings.items():
        sector = f"sector:{sector_of.get(symbol, UNKNOWN_SECTOR)}"
        move = shocks.get(symbol, shocks.get(sector, shocks.get("all", 0.0)))
        applied[symbol], by_symbol[symbol] = move, value * move
    return ShockResult(float(sum(by_symbol.values())), by_symbol, applied)


def sector_exposure(
    holdings: Mapping[str, float], sectors: Mapping[str, str | Instrument]
) -> pd.DataFrame:
    """Long, short (negative), net and gross notional per sector ("unknown" if not given)."""
    sector_of = sector_map(sectors)
    rows = [(sector_of.get(s, UNKNOWN_SECTOR), v) for s, v in holdings.items()]
    frame = pd.DataFrame(rows, columns=["sector", "value"])
    grouped = frame.groupby("sector")["value"]
    return pd.DataFrame(
        {
            "long": grouped.apply(lambda v: v[v > 0].sum()),
            "short": grouped.apply(lambda v: v[v < 0].sum()),
            "net": grouped.sum(),
            "gross": grouped.apply(lambda v: v.abs().sum()),
        }
    )


def sector_map(sectors: Mapping[str, str | Instrument]) -> dict[str, str]:
    """symbol -> sector from plain names or the warehouse's instruments."""
    out = {}
    for symbol, sector in sectors.items():
        name = sector.sector if isinstance(sector, Instrument) else sector
        out[symbol] = name or UNKNOWN_SECTOR
    return out
