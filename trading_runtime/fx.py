"""Currency conversion for an account whose cash, P&L, exposure and limits are in one base
currency (``RuntimeSettings.base_currency``) while its instruments may be priced in others.

The rates are bars like any others: an FX pair is an instrument of ``asset_class`` "fx" whose
symbol is two ISO codes, base then quote, priced in the quote currency - ``EURUSD`` at 1.10 is
1.10 USD for 1 EUR (its ``currency`` is USD). A currency C converts to the account's base B by
the pair ``CB`` (rate = its price) or ``BC`` (rate = 1 / its price); B itself is 1.0. There are
no crosses (EUR through GBP): every currency traded needs its own pair with the base. A pair is
a rate, not something the strategies trade (:meth:`FxRates.tradable`).

Marks and sizing convert at the pair's close; a fill converts at the pair's open of the bar it
fills in (its close when the pair has no open), the time a market order fills. A currency whose
instruments trade on a bar must have a rate on that bar: a missing one is an error that names
the pair, never a silent 1.0. docs/multi_currency.md has the formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError
from trading_runtime.instruments import Instrument

if TYPE_CHECKING:
    from trading_runtime.book import Book
    from trading_runtime.broker import CrossSection

FX = "fx"  # the asset class of a rate series


class FxRateMissing(LookupError, InputError):
    """An instrument's currency has no rate to the base currency where one is needed."""


@dataclass(frozen=True, slots=True)
class Route:
    """How ``currency`` becomes the base: the price of ``pair`` (column ``column`` of the
    feed), inverted when the pair is quoted the other way round."""

    currency: str
    pair: str
    column: int
    inverse: bool
    users: tuple[str, ...] = ()  # the instruments priced in ``currency``

    def rate(self, prices: np.ndarray) -> float:
        """Base per 1 unit of ``currency`` at ``prices`` (NaN: the pair has no price)."""
        price = float(prices[self.column])
        if self.inverse:
            return 1.0 / price if price > 0 else float("nan")
        return price


class FxRates:
    """The rates of one run: which pair converts each currency its instruments are in, and
    the rates on each bar. ``simulated`` False (a broker's or FIX venue's fills) refuses
    instruments outside the base currency: only the simulated venue stamps its fills with
    their rate."""

    def __init__(
        self,
        base: str,
        instruments: Mapping[str, Instrument],
        symbols: Sequence[str],
        simulated: bool = True,
    ) -> None:
        self.base = base
        self.symbols = list(symbols)
        self.currency = {s: instruments[s].currency for s in self.symbols}
        self.pairs = np.array([instruments[s].asset_class == FX for s in self.symbols], bool)
        traded = [s for s, pair in zip(self.symbols, self.pairs, strict=True) if not pair]
        foreign = sorted({self.currency[s] for s in traded} - {base})
        self.column = {s: i for i, s in enumerate(self.symbols)}
        self.routes = {c: self._route(c, tuple(s for s in traded if self.currency[s] == c))
                       for c in foreign}  # fmt: skip
        self.active = bool(self.routes)  # False: a one-currency run, nothing is converted
        if self.active and not simulated:
            raise ValueError(
                f"instruments in {', '.join(self.routes)} with base currency {base}: only the"
                " simulated venue converts fills; trade them with --execution simulated"
            )
        # per symbol: its currency's position in ``routes``; -1 the base, -2 no route (a pair)
        order = {c: k for k, c in enumerate(self.routes)}
        self._route_of = np.array(
            [-1 if self.currency[s] == base else order.get(self.currency[s], -2)
             for s in self.symbols], int,
        )  # fmt: skip
        self._bar: CrossSection | None = None
        self._rates = np.ones(len(self.symbols))
        self._marks: dict[str, float] = {}

    def _route(self, currency: str, users: tuple[str, ...]) -> Route:
        columns = self.column
        for pair, inverse in ((currency + self.base, False), (self.base + currency, True)):
            if pair in columns and self.pairs[columns[pair]]:
                return Route(currency, pair, columns[pair], inverse, users)
        raise FxRateMissing(
            f"{', '.join(users[:3])} {'is' if len(users) == 1 else 'are'} in {currency} but the"
            f" base currency is {self.base} and the run has no {currency}{self.base} (or"
            f" {self.base}{currency}) bars: ingest that pair as an instrument of asset_class"
            f" 'fx' ({currency}{self.base} = {self.base} per 1 {currency}) and trade it with"
            " the others, or set QTIS_TRADE_BASE_CURRENCY"
        )

    # --- one bar ----------------------------------------------------------------------------

    def _at(self, bar: CrossSection) -> None:
        """The bar's rates at the pairs' closes, once per bar; a currency missing a rate while
        one of its instruments has a price is an error."""
        if self._bar is bar:
            return
        marks, per_currency = {}, []
        for currency, route in self.routes.items():
            rate = route.rate(bar.close)
            per_currency.append(rate)
            if rate == rate and rate > 0:
                marks[currency] = rate
                continue
            priced = [s for s in route.users if not np.isnan(bar.close[self.column[s]])]
            if priced:
                raise FxRateMissing(
                    f"no {route.pair} rate on {bar.ts:%Y-%m-%d %H:%M}: {', '.join(priced[:3])}"
                    f" ({currency}) cannot be valued in {self.base}; the {route.pair} bars must"
                    f" cover every bar its instruments trade on"
                )
        table = np.array([*per_currency, np.nan, 1.0])  # index -1: the base, -2: no route
        self._rates = table[self._route_of]
        self._marks, self._bar = marks, bar

    def marks(self, bar: CrossSection) -> dict[str, float] | None:
        """Base per 1 unit of each foreign currency at ``bar``'s close (what ``BarClosed``
        journals); None in a one-currency run (nothing journaled: its events stay as they
        were)."""
        if not self.active:
            return None
        self._at(bar)
        return dict(self._marks)

    def in_base(self, bar: CrossSection) -> np.ndarray:
        """Each symbol's close in the base currency (``bar.close`` itself in a one-currency
        run): what sizing divides base-currency equity by."""
        if not self.active:
            return bar.close
        self._at(bar)
        return bar.close * self._rates

    def for_fill(self, symbol: str, bar: CrossSection) -> tuple[str | None, float]:
        """The currency (None: the base) and rate a fill of ``symbol`` in ``bar`` converts at:
        the pair's open, or its close when it has no open."""
        currency = self.currency.get(symbol, self.base)
        if currency == self.base:
            return None, 1.0
        route = self.routes.get(currency)
        if route is None:
            raise FxRateMissing(f"{symbol} is in {currency}: no pair converts it to {self.base}")
        rate = route.rate(bar.open)
        if not (rate == rate and rate > 0):
            rate = route.rate(bar.close)
        if not (rate == rate and rate > 0):
            raise FxRateMissing(
                f"no {route.pair} rate on {bar.ts:%Y-%m-%d %H:%M}: the fill of {symbol}"
                f" ({currency}) cannot be converted to {self.base}"
            )
        return currency, rate

    def tradable(self, strength) -> np.ndarray:
        """A strategy's strengths with the FX pairs' set to 0: a pair is a rate source, never
        traded by the strategies."""
        strength = np.asarray(strength, dtype=float).copy()
        strength[self.pairs] = 0.0
        return strength

    def check(self, book: Book) -> Book:
        """``book`` (a stream being resumed) if it was started in this base currency."""
        if book.base_currency != self.base:
            raise ValueError(
                f"the stream was started with base currency {book.base_currency}: resume it"
                f" with QTIS_TRADE_BASE_CURRENCY={book.base_currency}, or use a new --stream"
            )
        return book
