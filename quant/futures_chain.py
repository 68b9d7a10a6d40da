"""A synthetic chain of quarterly futures on one root, for tests and the demo: deterministic for
a seed, with the features a roll rule and a back-adjustment have to handle.

- Contracts expire on the third Friday of March, June, September and December and are named
  root + month code + two-digit year (``ESH24``); each trades from ``listed_days`` calendar
  days before its expiry through its expiry day.
- Prices follow cost of carry: ``spot * exp(carry * years to expiry)`` times a small
  independent basis noise per contract, rounded to the tick, with spot a seeded geometric
  Brownian motion. Successive contracts therefore differ by about ``carry / 4`` of the price:
  the gap a back-adjustment removes.
- Volume sits in the front contract and moves to the next one over a few bars centred
  ``switch_days`` business days before the front's expiry; open interest follows a bar or two later
  (it moves when positions are closed, not when the new contract starts trading).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from quant.futures import ContractChain, FuturesContract

MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def quarterly_expiries(first: date, last: date) -> list[date]:
    """Quarterly third Fridays from the first on or after ``first`` until two past ``last``
    (so the last bar always has a next contract to roll into)."""
    out: list[date] = []
    year, month = first.year, 3
    while len([d for d in out if d > last]) < 2:
        expiry = third_friday(year, month)
        if expiry >= first:
            out.append(expiry)
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return out


def synthetic_chain(
    root: str = "ES",
    start: str = "2022-01-03",
    bars: int = 504,
    *,
    multiplier: float = 50.0,
    tick_size: float = 0.25,
    spot: float = 4000.0,
    carry: float = 0.04,
    volatility: float = 0.18,
    basis_noise: float = 0.0005,
    listed_days: int = 200,
    volume: float = 1_500_000.0,
    switch_days: float = 8.0,
    initial_margin: float = 12_000.0,
    maintenance_margin: float = 11_000.0,
    seed: int = 0,
) -> ContractChain:
    """``bars`` business days of quarterly ``root`` contracts from ``start``; see the module."""
    if bars < 2:
        raise ValueError(f"bars must be at least 2, got {bars}")
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=bars)
    expiries = quarterly_expiries(dates[0].date(), dates[-1].date())
    contracts = tuple(
        FuturesContract(
            root,
            f"{root}{MONTH_CODES[e.month]}{e.year % 100:02d}",
            e,
            multiplier,
            tick_size,
            initial_margin,
            maintenance_margin,
        )
        for e in expiries
    )
    dt = 1 / 252
    steps = rng.normal(-0.5 * volatility**2 * dt, volatility * np.sqrt(dt), bars - 1)
    path = spot * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    days = dates.to_numpy().astype("datetime64[D]")
    expiry_days = np.array(expiries, dtype="datetime64[D]")
    # calendar days to each contract's expiry, bars x contracts
    to_expiry = (expiry_days[None, :] - days[:, None]).astype(int)
    trading = (to_expiry >= 0) & (to_expiry <= listed_days)
    basis = np.exp(basis_noise * rng.standard_normal(to_expiry.shape))
    fair = path[:, None] * np.exp(carry * to_expiry / 365.0) * basis
    close = np.where(trading, np.round(fair / tick_size) * tick_size, np.nan)
    share = _front_shares(days, expiry_days, switch_days)
    traded = volume * share * rng.lognormal(0.0, 0.2, share.shape)
    held = 2.5 * volume * _front_shares(days, expiry_days, switch_days - 1.5)
    columns = [c.symbol for c in contracts]
    frames = [
        pd.DataFrame(np.where(trading, values, np.nan), index=dates, columns=columns)
        for values in (close, np.round(traded), np.round(held))
    ]
    return ContractChain(contracts, *frames)


def _front_shares(days: np.ndarray, expiries: np.ndarray, centre: float) -> np.ndarray:
    """Each contract's share of the root's activity per bar: the front and the next split it
    by a logistic in the business days left to the front's expiry, later contracts get 1%."""
    shares = np.full((len(days), len(expiries)), 0.01)
    front = np.searchsorted(expiries, days)  # first contract expiring on or after the bar
    left = np.busday_count(days, expiries[np.minimum(front, len(expiries) - 1)])
    moved = 1.0 / (1.0 + np.exp((left - centre) / 1.5))
    rows = np.arange(len(days))
    ok = front + 1 < len(expiries)
    shares[rows[ok], front[ok]] = 1.0 - moved[ok]
    shares[rows[ok], front[ok] + 1] = moved[ok]
    return shares
