"""Model-priced option chains for tests and the demo: deterministic daily closes of listed
options on one underlying, each the QuantLib price (``quant.options``) of the contract at that
day's underlying close and a given implied volatility, so that a runtime which solves the
implied volatility back from the closes finds the input exactly.

- Symbols are OCC-like: underlying + expiry as YYMMDD + C/P + strike (``SYN240119C100``;
  a fractional strike keeps its decimals, ``C97.5``).
- An option has a close on every date of the underlying up to and including its expiry; on
  the expiry date the close is its exercise value (``settle_at_expiry``), after it none (NaN).
- ``gbm_closes`` is a seeded geometric Brownian motion on business days, the underlying the
  demo and the tests price their chains on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant.options import (
    MarketInputs,
    OptionContract,
    OptionPricer,
    Right,
    Style,
    price_option,
    settle_at_expiry,
)


def option_symbol(contract: OptionContract) -> str:
    """``SYN240119C100``: underlying, expiry YYMMDD, C or P, the strike (no trailing zeros)."""
    strike = f"{contract.strike:.4f}".rstrip("0").rstrip(".")
    right = "C" if contract.right == "call" else "P"
    return f"{contract.underlying}{contract.expiry:%y%m%d}{right}{strike}"


@dataclass(frozen=True)
class ChainMarket:
    """What every option of the chain is priced with besides the underlying's close: a flat
    implied ``volatility`` (a constant, or a series on the underlying's dates), the
    continuously compounded ``rate`` and ``dividend_yield``."""

    volatility: float | pd.Series
    rate: float = 0.0
    dividend_yield: float = 0.0

    def volatility_on(self, day: pd.Timestamp) -> float:
        if isinstance(self.volatility, pd.Series):
            return float(self.volatility.loc[day])
        return float(self.volatility)


def chain_closes(
    underlying: pd.Series,
    contracts: Sequence[OptionContract],
    market: ChainMarket,
    pricer: OptionPricer | None = None,
) -> pd.DataFrame:
    """Each contract's daily close (a column per ``option_symbol``) on the dates of
    ``underlying`` (closes indexed by date): the model price before expiry, the exercise value
    on the expiry date, NaN after it. The contracts must all be on one underlying."""
    if underlying.empty or underlying.isna().any() or (underlying <= 0).any():
        raise ValueError("underlying must be a non-empty series of positive closes")
    names = {c.underlying for c in contracts}
    if len(names) > 1:
        raise ValueError(f"a chain is on one underlying, got {sorted(names)}")
    out = pd.DataFrame(index=underlying.index, dtype=float)
    for contract in contracts:
        column = np.full(len(underlying), np.nan)
        for k, (ts, spot) in enumerate(underlying.items()):
            day = pd.Timestamp(ts).date()
            if day > contract.expiry:
                break
            if day == contract.expiry:
                column[k] = settle_at_expiry(contract, float(spot))
                continue
            inputs = MarketInputs(
                spot=float(spot),
                volatility=market.volatility_on(ts),
                rate=market.rate,
                valuation_date=day,
                dividend_yield=market.dividend_yield,
            )
            column[k] = price_option(contract, inputs, pricer).price
        out[option_symbol(contract)] = column
    return out


def gbm_closes(
    start: str | date,
    bars: int,
    *,
    spot: float = 100.0,
    volatility: float = 0.2,
    drift: float = 0.0,
    seed: int = 0,
    days_per_year: float = 252.0,
) -> pd.Series:
    """``bars`` business-day closes of a geometric Brownian motion from ``spot`` (the first
    close), annual ``volatility`` and ``drift``; deterministic for ``seed``."""
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    dates = pd.bdate_range(start, periods=bars)
    step = volatility / np.sqrt(days_per_year)
    shocks = np.random.default_rng(seed).standard_normal(bars - 1)
    logs = np.r_[0.0, np.cumsum((drift / days_per_year - 0.5 * step**2) + step * shocks)]
    return pd.Series(spot * np.exp(logs), index=dates, name="close")


def strip(
    underlying: str,
    expiry: date,
    strikes: Sequence[float],
    rights: Sequence[Right] = ("call", "put"),
    style: Style = "european",
    multiplier: float = 100.0,
) -> list[OptionContract]:
    """The calls and puts of ``strikes`` expiring on ``expiry`` (calls first)."""
    return [
        OptionContract(underlying, float(k), expiry, right, style, multiplier)
        for right in rights
        for k in strikes
    ]
