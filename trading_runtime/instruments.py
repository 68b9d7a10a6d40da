"""Instruments as the warehouse knows them, and the rounding every order goes through: a
quantity is a whole number of lots, a price a whole number of ticks."""

from __future__ import annotations

import math
from datetime import date

from warehouse.db import connect
from warehouse.providers.base import Instrument

__all__ = ["Instrument", "listed", "load_instruments", "round_price", "round_quantity"]


def load_instruments(url: str, symbols: list[str] | None = None) -> dict[str, Instrument]:
    with connect(url) as conn:
        rows = conn.execute(
            "select symbol, name, sector, asset_class, currency, exchange_tz, tick_size,"
            " lot_size, multiplier, listed_from, delisted_at, exchange, initial_margin,"
            " underlying, expiry, strike, option_right, exercise_style from market.instruments"
            " where %s::text[] is null or symbol = any(%s) order by symbol",
            (symbols, symbols),
        ).fetchall()
    found = {row[0]: Instrument(*row) for row in rows}
    missing = sorted(set(symbols or ()) - set(found))
    if missing:
        raise LookupError(
            f"unknown symbols {', '.join(missing)}: not in market.instruments "
            "(ingest them first: `qtis ingest`)"
        )
    return found


def round_quantity(instrument: Instrument, quantity: float) -> float:
    """Whole lots, towards zero: never more than asked for."""
    lots = math.floor(abs(quantity) / instrument.lot_size + 1e-9)
    return math.copysign(lots * instrument.lot_size, quantity) if lots else 0.0


def round_price(instrument: Instrument, price: float) -> float:
    """The nearest tick, written with the tick's decimals so that 0.1 + 0.2 stays 0.3."""
    tick = instrument.tick_size
    decimals = max(0, -math.floor(math.log10(tick)) + 2)
    return round(round(price / tick) * tick, decimals)


def listed(instrument: Instrument, day: date) -> bool:
    """Tradeable on ``day``: on or after listing and before delisting (point-in-time universe)."""
    if instrument.listed_from is not None and day < instrument.listed_from:
        return False
    return instrument.delisted_at is None or day < instrument.delisted_at
