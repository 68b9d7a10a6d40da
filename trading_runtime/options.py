"""Options in the runtime: each listed option's implied volatility and greeks at a bar, the
greeks of an account's book, and cash settlement at expiry.

- An option (asset class ``option``) is ``quant.options.OptionContract`` built from its
  instrument's terms; its underlying must be among the run's symbols (greeks and settlement
  need its close).
- At a bar, an option's implied volatility is solved from its close and the underlying's close
  (``quant.options.implied_volatility``: QuantLib), with the rate and dividend yield of
  ``RuntimeSettings`` (``QTIS_TRADE_OPTION_*``); a close no volatility can give falls back to
  ``option_fallback_vol``. Greeks are ``quant.options`` prices at that volatility, and a book's
  greeks ``quant.options.portfolio_greeks`` (stock in an underlying adds delta 1 a unit, times
  its instrument's multiplier).
- Expiry: on the first bar on or after an option's expiry date every account's position in it
  is settled in cash at the exercise value (``settle_at_expiry`` at the underlying's close of
  that bar): exercised in the money, worthless otherwise, journaled as ``OptionSettled``. No
  physical delivery, no early exercise of American options (they are valued with it, but held
  to expiry unless the strategy sells them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from quant.options import (
    MarketInputs,
    OptionContract,
    OptionGreeks,
    OptionPosition,
    OptionPricer,
    PortfolioGreeks,
    StockPosition,
    exercises_at_expiry,
    implied_volatility,
    portfolio_greeks,
    price_option,
    settle_at_expiry,
)
from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.broker import CrossSection
from trading_runtime.instruments import Instrument
from trading_runtime.settings import RuntimeSettings

OPTION = "option"  # Instrument.asset_class of options


def contract_of(instrument: Instrument) -> OptionContract | None:
    """The option ``instrument`` is (None: not an option); missing terms are an error."""
    if instrument.asset_class != OPTION:
        return None
    terms = ("underlying", "expiry", "strike", "option_right", "exercise_style")
    missing = [t for t in terms if getattr(instrument, t) is None]
    if missing:
        raise ValueError(
            f"option {instrument.symbol} has no {', '.join(missing)} in market.instruments"
        )
    return OptionContract(
        instrument.underlying,  # type: ignore[arg-type]
        float(instrument.strike),  # type: ignore[arg-type]
        instrument.expiry,  # type: ignore[arg-type]
        instrument.option_right,  # type: ignore[arg-type]
        instrument.exercise_style,  # type: ignore[arg-type]
        float(instrument.multiplier),
    )


@dataclass(frozen=True)
class OptionMarket:
    """The inputs besides the closes: continuously compounded annual ``rate`` and
    ``dividend_yield``, and the volatility used where a close implies none."""

    rate: float = 0.0
    dividend_yield: float = 0.0
    fallback_vol: float = 0.2

    @classmethod
    def of(cls, settings: RuntimeSettings) -> OptionMarket:
        return cls(settings.option_rate, settings.option_dividend_yield,
                   settings.option_fallback_vol)  # fmt: skip


@dataclass(frozen=True)
class Valued:
    """One option at one bar: the volatility its greeks are at and whether its close
    implied it (False: the fallback)."""

    symbol: str
    contract: OptionContract
    price: float
    spot: float
    volatility: float
    implied: bool
    greeks: OptionGreeks


class OptionDesk:
    """The run's options (those among ``symbols``): their contracts, the last closes seen, and
    greeks at them. Values are cached per (symbol, day, close, underlying close)."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        symbols: Sequence[str],
        market: OptionMarket,
        pricer: OptionPricer | None = None,
    ) -> None:
        self.contracts: dict[str, OptionContract] = {}
        for symbol in symbols:
            contract = contract_of(instruments[symbol])
            if contract is None:
                continue
            if contract.underlying not in symbols:
                raise ValueError(
                    f"option {symbol}'s underlying {contract.underlying} is not among the run's"
                    " symbols: add it (its greeks and its settlement need the underlying's close)"
                )
            self.contracts[symbol] = contract
        self.underlying_of = {s: c.underlying for s, c in self.contracts.items()}
        self.stock_multiplier = {
            u: float(instruments[u].multiplier) for u in set(self.underlying_of.values())
        }
        self.symbols, self.market = list(symbols), market
        self.pricer = pricer or OptionPricer()
        self.closes: dict[str, float] = {}  # the last finite close of every symbol
        self.day: date | None = None
        self._cache: dict[tuple, Valued] = {}

    @classmethod
    def of(
        cls, instruments: Mapping[str, Instrument], symbols: Sequence[str],
        settings: RuntimeSettings,
    ) -> OptionDesk:  # fmt: skip
        return cls(instruments, symbols, OptionMarket.of(settings))

    def underlyings(self, symbols) -> set[str]:
        """The underlyings of the options among ``symbols``."""
        return {self.underlying_of[s] for s in symbols if s in self.underlying_of}

    def observe(self, bar: CrossSection) -> None:
        """The bar's closes (in the instruments' currencies) and date."""
        day = bar.ts.date()
        if day != self.day:
            self._cache.clear()
        self.day = day
        for symbol, close in zip(self.symbols, bar.close.tolist(), strict=True):
            if close == close:  # not NaN
                self.closes[symbol] = close

    def value(self, symbol: str, price: float, spot: float, day: date) -> Valued:
        """``symbol``'s implied volatility and greeks at close ``price``, underlying ``spot``."""
        key = (symbol, day, price, spot)
        found = self._cache.get(key)
        if found is not None:
            return found
        contract, m = self.contracts[symbol], self.market
        market = MarketInputs(spot, m.fallback_vol, m.rate, day, m.dividend_yield)
        try:
            vol, implied = implied_volatility(contract, price, market, self.pricer), True
        except (ValueError, RuntimeError):  # a close below intrinsic value, or no convergence
            vol, implied = m.fallback_vol, False
        greeks = price_option(contract, MarketInputs(spot, vol, m.rate, day, m.dividend_yield),
                              self.pricer)  # fmt: skip
        found = self._cache[key] = Valued(symbol, contract, price, spot, vol, implied, greeks)
        return found

    def live(self, symbol: str, day: date) -> bool:
        """An option not yet at its expiry on ``day`` (one at or past it is settled)."""
        return self.contracts[symbol].expiry > day

    def greeks(
        self,
        quantities: Mapping[str, float],
        prices: Mapping[str, float] | None = None,
        day: date | None = None,
        only: str | None = None,
    ) -> PortfolioGreeks:
        """Greeks of a book of ``quantities`` (contracts of options, units of stock; other
        symbols ignored) at ``prices`` (default the last closes) on ``day`` (default the
        last bar's); ``only``: that underlying's options and stock alone."""
        prices = self.closes if prices is None else prices
        day = day or self.day
        if day is None:
            raise ValueError("no bar seen yet: pass day=")
        positions: list[OptionPosition | StockPosition] = []
        for symbol, quantity in quantities.items():
            if not quantity:
                continue
            if symbol in self.contracts and self.live(symbol, day):
                underlying = self.underlying_of[symbol]
                if only is None or underlying == only:
                    valued = self.value(symbol, prices[symbol], prices[underlying], day)
                    positions.append(OptionPosition(valued.contract, quantity, valued.greeks))
            elif symbol in self.stock_multiplier and (only is None or symbol == only):
                positions.append(StockPosition(symbol, quantity * self.stock_multiplier[symbol]))
        spots = {u: prices[u] for u in self.stock_multiplier if u in prices}
        return portfolio_greeks(positions, spots)

    def holdings(self, book: Book, account: str, working: bool = True) -> dict[str, float]:
        """``account``'s quantities of the options and their underlyings (with ``working``,
        as if its open orders filled)."""
        held = book.accounts[account]
        out = {}
        for symbol in (*self.contracts, *self.stock_multiplier):
            quantity = held.quantity(symbol)
            if working:
                quantity += book.pending_quantity(account, symbol)
            out[symbol] = quantity
        return out

    def settle(self, book: Book, bar: CrossSection) -> list[ev.OptionSettled]:
        """The settlements due on ``bar`` (it is observed first): every account's position in
        an option whose expiry is on or before the bar's date, at the underlying's close."""
        if not self.contracts:
            return []
        self.observe(bar)
        day, out = bar.ts.date(), []
        for symbol, contract in self.contracts.items():
            if contract.expiry > day:
                continue
            for account in book.accounts.values():
                quantity = account.quantity(symbol)
                if not quantity:
                    continue
                spot = self.closes.get(contract.underlying)
                if spot is None or not np.isfinite(spot):
                    raise ValueError(
                        f"option {symbol} expired but {contract.underlying} has no close yet"
                    )
                out.append(
                    ev.OptionSettled(
                        account.name, symbol, quantity, spot, settle_at_expiry(contract, spot),
                        exercises_at_expiry(contract, spot), bar.ts.isoformat(),
                        key=f"settled:{account.name}:{symbol}",
                    )
                )  # fmt: skip
        return out


class OptionExpiries:
    """An overlay that targets every option at or past its expiry flat: it has been settled,
    and must not be bought again on its last listed day."""

    def __init__(self, expiries: dict[int, date]) -> None:
        self.expiries = expiries  # column -> expiry

    @classmethod
    def of(cls, symbols: Sequence[str], instruments: Mapping[str, Instrument]):
        expiries = {}
        for i, symbol in enumerate(symbols):
            contract = contract_of(instruments[symbol])
            if contract is not None:
                expiries[i] = contract.expiry
        return cls(expiries) if expiries else None

    def targets(self, target, bar: CrossSection, prices, current, equity) -> np.ndarray:
        out = np.asarray(target, dtype=float).copy()
        day = bar.ts.date()
        for i, expiry in self.expiries.items():
            if expiry <= day:
                out[i] = 0.0
        return out
