"""Equity options: a contract value type, market inputs, QuantLib prices and greeks, the
exercise decision at expiry, and the greeks of a book of options and stock in currency.

Pricing is QuantLib's (``ql.BlackScholesMertonProcess`` on flat curves): European options by
``ql.AnalyticEuropeanEngine`` (the Black-Scholes-Merton closed form), American options by
``ql.FdBlackScholesVanillaEngine`` (finite differences, the default) or
``ql.BinomialVanillaEngine`` ("crr"). Conventions, chosen so that year fractions are plain:

- time: ``ql.Actual365Fixed`` on ``ql.NullCalendar`` (no holidays), so T = calendar days / 365;
- rates and dividend yield: continuously compounded, annual, flat;
- volatility: annualised Black volatility as a fraction (0.20 is 20%), flat.

Greek units (``OptionGreeks``), all per one unit of the underlying (one share; a contract is
``multiplier`` of those), in the currency of the spot:

- ``delta``: dV/dS; ``gamma``: d2V/dS2 (per one currency unit of the spot);
- ``vega``: dV/dsigma per 1.00 of volatility (QuantLib's unit; divide by 100 for one vol point);
- ``theta``: dV/dt per year as QuantLib gives it (the value's change as calendar time passes,
  T shrinking); ``theta_per_day`` is theta / 365, the same as QuantLib's ``thetaPerDay``;
- ``rho``: dV/dr per 1.00 of the rate (divide by 100 for one percentage point).

QuantLib's evaluation date is global state: each pricing sets it to the valuation date and
restores the previous one afterwards, so pricing is not thread-safe (QuantLib's own limit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from types import MappingProxyType
from typing import Literal

import QuantLib as ql

Right = Literal["call", "put"]
Style = Literal["european", "american"]
AmericanEngine = Literal["fd", "binomial"]
RIGHTS = ("call", "put")
STYLES = ("european", "american")
AMERICAN_ENGINES = ("fd", "binomial")
DAYS_PER_YEAR = 365.0  # of Actual365Fixed; theta_per_day divides by it
_DAY_COUNT = ql.Actual365Fixed()
_CALENDAR = ql.NullCalendar()


def _finite(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class OptionContract:
    """One listed-style option: ``multiplier`` units of ``underlying`` at ``strike``."""

    underlying: str
    strike: float
    expiry: date
    right: Right
    style: Style
    multiplier: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.underlying, str) or not self.underlying:
            raise ValueError(f"underlying must be a non-empty symbol, got {self.underlying!r}")
        _finite("strike", self.strike)
        if self.strike <= 0:
            raise ValueError(f"strike must be > 0, got {self.strike}")
        if not isinstance(self.expiry, date):
            raise ValueError(f"expiry must be a datetime.date, got {self.expiry!r}")
        if self.right not in RIGHTS:
            raise ValueError(f"right must be one of {RIGHTS}, got {self.right!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        _finite("multiplier", self.multiplier)
        if self.multiplier <= 0:
            raise ValueError(f"multiplier must be > 0, got {self.multiplier}")


@dataclass(frozen=True)
class MarketInputs:
    """What an option's value depends on besides the contract, as of ``valuation_date``.
    ``rate`` and ``dividend_yield`` are continuously compounded annual rates."""

    spot: float
    volatility: float
    rate: float
    valuation_date: date
    dividend_yield: float = 0.0

    def __post_init__(self) -> None:
        for name in ("spot", "volatility", "rate", "dividend_yield"):
            _finite(name, getattr(self, name))
        if self.spot <= 0:
            raise ValueError(f"spot must be > 0, got {self.spot}")
        if self.volatility <= 0:
            raise ValueError(
                f"volatility must be > 0 (a fraction: 0.2 is 20%), got {self.volatility}"
            )
        if not isinstance(self.valuation_date, date):
            raise ValueError(f"valuation_date must be a datetime.date, got {self.valuation_date!r}")


@dataclass(frozen=True)
class OptionGreeks:
    """Price and greeks per one unit of the underlying (see the module docstring for units):
    vega and rho per 1.00 of volatility / rate, theta per year of calendar time."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float

    @property
    def theta_per_day(self) -> float:
        """Theta per calendar day (theta / 365), QuantLib's ``thetaPerDay``."""
        return self.theta / DAYS_PER_YEAR


@dataclass(frozen=True)
class OptionPricer:
    """Prices with QuantLib. European options always use the analytic engine; American ones
    use ``american_engine``: "fd" (``FdBlackScholesVanillaEngine`` with ``fd_time_steps`` x
    ``fd_grid_points``) or "binomial" (``BinomialVanillaEngine("crr", binomial_steps)``).

    Neither American engine gives vega or rho, so those are central differences through the
    same engine: (V(sigma + h) - V(sigma - h)) / 2h with h = ``vol_bump`` (at most sigma / 2),
    and likewise for the rate with ``rate_bump``. Price, delta, gamma and theta are the
    engine's own. The finite-difference vega matches the analytic one to about 1e-4
    (relative) where early exercise is worthless; the CRR tree's is rougher (about 2%): moving
    sigma moves the tree's nodes across the strike, so its price saw-tooths in sigma."""

    american_engine: AmericanEngine = "fd"
    binomial_steps: int = 800
    fd_time_steps: int = 200
    fd_grid_points: int = 400
    vol_bump: float = 1e-3
    rate_bump: float = 1e-4

    def __post_init__(self) -> None:
        if self.american_engine not in AMERICAN_ENGINES:
            raise ValueError(
                f"american_engine must be one of {AMERICAN_ENGINES}, got {self.american_engine!r}"
            )
        for name in ("binomial_steps", "fd_time_steps", "fd_grid_points"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        for name in ("vol_bump", "rate_bump"):
            _finite(name, getattr(self, name))
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def price(self, contract: OptionContract, market: MarketInputs) -> OptionGreeks:
        """Price and greeks of one unit of the underlying's option before its expiry."""
        _check_dates(contract, market)
        if contract.style == "european":
            return self._european(contract, market)
        return self._american(contract, market)

    def _european(self, contract: OptionContract, market: MarketInputs) -> OptionGreeks:
        with _evaluation_date(market.valuation_date):
            option = _option(contract, market)
            option.setPricingEngine(ql.AnalyticEuropeanEngine(_process(market)))
            return OptionGreeks(
                price=option.NPV(),
                delta=option.delta(),
                gamma=option.gamma(),
                vega=option.vega(),
                theta=option.theta(),
                rho=option.rho(),
            )

    def _american(self, contract: OptionContract, market: MarketInputs) -> OptionGreeks:
        with _evaluation_date(market.valuation_date):
            option = self._priced_american(contract, market)
            price, delta, gamma, theta = (
                option.NPV(),
                option.delta(),
                option.gamma(),
                option.theta(),
            )
            h_vol = min(self.vol_bump, market.volatility / 2)
            vega = self._central(contract, market, "volatility", h_vol)
            rho = self._central(contract, market, "rate", self.rate_bump)
        return OptionGreeks(price=price, delta=delta, gamma=gamma, vega=vega, theta=theta, rho=rho)

    def _central(
        self, contract: OptionContract, market: MarketInputs, field: str, h: float
    ) -> float:
        up = replace(market, **{field: getattr(market, field) + h})
        down = replace(market, **{field: getattr(market, field) - h})
        return (
            self._priced_american(contract, up).NPV() - self._priced_american(contract, down).NPV()
        ) / (2 * h)

    def _priced_american(self, contract: OptionContract, market: MarketInputs) -> ql.VanillaOption:
        option = _option(contract, market)
        process = _process(market)
        if self.american_engine == "fd":
            engine = ql.FdBlackScholesVanillaEngine(
                process, self.fd_time_steps, self.fd_grid_points
            )
        else:
            engine = ql.BinomialVanillaEngine(process, "crr", self.binomial_steps)
        option.setPricingEngine(engine)
        return option


def price_option(
    contract: OptionContract, market: MarketInputs, pricer: OptionPricer | None = None
) -> OptionGreeks:
    """Price and greeks of ``contract`` under ``market``, with ``pricer``'s engine settings
    (default ``OptionPricer()``: analytic European, finite-difference American)."""
    return (pricer or OptionPricer()).price(contract, market)


def _check_dates(contract: OptionContract, market: MarketInputs) -> None:
    if contract.expiry <= market.valuation_date:
        raise ValueError(
            f"expiry ({contract.expiry}) must be after the valuation_date "
            f"({market.valuation_date}); an option at its expiry settles by settle_at_expiry"
        )


def _ql_date(day: date) -> ql.Date:
    return ql.Date(day.day, day.month, day.year)


class _evaluation_date:
    """Sets QuantLib's global evaluation date for a block and restores the previous one."""

    def __init__(self, day: date) -> None:
        self._day = _ql_date(day)
        self._saved: ql.Date | None = None

    def __enter__(self) -> None:
        settings = ql.Settings.instance()
        self._saved = settings.evaluationDate
        settings.evaluationDate = self._day

    def __exit__(self, *exc) -> None:
        ql.Settings.instance().evaluationDate = self._saved


def _process(market: MarketInputs) -> ql.BlackScholesMertonProcess:
    today = _ql_date(market.valuation_date)

    def flat(rate: float) -> ql.YieldTermStructureHandle:
        return ql.YieldTermStructureHandle(
            ql.FlatForward(today, rate, _DAY_COUNT, ql.Continuous, ql.Annual)
        )

    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(market.spot)),
        flat(market.dividend_yield),
        flat(market.rate),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, _CALENDAR, market.volatility, _DAY_COUNT)
        ),
    )


def _option(contract: OptionContract, market: MarketInputs) -> ql.VanillaOption:
    kind = ql.Option.Call if contract.right == "call" else ql.Option.Put
    expiry = _ql_date(contract.expiry)
    if contract.style == "european":
        exercise = ql.EuropeanExercise(expiry)
    else:
        exercise = ql.AmericanExercise(_ql_date(market.valuation_date), expiry)
    return ql.VanillaOption(ql.PlainVanillaPayoff(kind, contract.strike), exercise)


# --- implied volatility ---------------------------------------------------------------------


def implied_volatility(
    contract: OptionContract,
    price: float,
    market: MarketInputs,
    pricer: OptionPricer | None = None,
    *,
    accuracy: float = 1e-12,
    max_evaluations: int = 500,
    min_vol: float = 1e-4,
    max_vol: float = 5.0,
) -> float:
    """The volatility at which ``contract`` is worth ``price`` under ``market`` (its own
    ``volatility`` is only the solver's first guess). European: QuantLib's
    ``VanillaOption.impliedVolatility`` (the analytic engine); American: QuantLib's ``Brent``
    solver on ``pricer``'s engine, so the volatility reprices with the same engine the greeks
    come from (QuantLib's own American implied vol uses a fixed coarser grid). ``accuracy``
    is on the volatility. A price outside what ``min_vol``..``max_vol`` can give (below the
    intrinsic value, say) is a ``ValueError`` that names the bounds, as is a bound the engine
    cannot price at (the CRR tree needs a volatility above about |rate| x sqrt(step))."""
    _finite("price", price)
    _check_dates(contract, market)
    if price <= 0:
        raise ValueError(f"price must be > 0 to imply a volatility, got {price}")
    pricer = pricer or OptionPricer()
    try:
        low = pricer.price(contract, replace(market, volatility=min_vol)).price
        high = pricer.price(contract, replace(market, volatility=max_vol)).price
    except RuntimeError as exc:  # a CRR tree at a tiny volatility: "negative probability"
        raise ValueError(
            f"the {pricer.american_engine} engine cannot price at min_vol {min_vol} or max_vol"
            f" {max_vol} ({exc}): narrow the bounds"
        ) from exc
    if not low <= price <= high:
        raise ValueError(
            f"no volatility in [{min_vol}, {max_vol}] prices {contract.right} {contract.strike}"
            f" at {price} (it is worth {low:.6g} to {high:.6g} there)"
        )
    guess = min(max(market.volatility, min_vol), max_vol)
    with _evaluation_date(market.valuation_date):
        if contract.style == "european":
            option = _option(contract, market)
            option.setPricingEngine(ql.AnalyticEuropeanEngine(_process(market)))
            return option.impliedVolatility(
                price, _process(market), accuracy, max_evaluations, min_vol, max_vol
            )

        def error(vol: float) -> float:
            return pricer._priced_american(contract, replace(market, volatility=vol)).NPV() - price

        solver = ql.Brent()
        solver.setMaxEvaluations(max_evaluations)
        return solver.solve(error, accuracy, guess, min_vol, max_vol)


# --- expiry ---------------------------------------------------------------------------------


def exercises_at_expiry(contract: OptionContract, spot: float) -> bool:
    """Whether the holder exercises at expiry: only strictly in the money (at the money the
    exercise would earn nothing and is skipped)."""
    _finite("spot", spot)
    if spot < 0:
        raise ValueError(f"spot must be >= 0, got {spot}")
    return spot > contract.strike if contract.right == "call" else spot < contract.strike


def settle_at_expiry(contract: OptionContract, spot: float) -> float:
    """Cash the holder receives at expiry per unit of the underlying (a position gets
    quantity x multiplier x this): spot - strike for an exercised call, strike - spot for an
    exercised put, 0 when not exercised."""
    if not exercises_at_expiry(contract, spot):
        return 0.0
    return spot - contract.strike if contract.right == "call" else contract.strike - spot


# --- a book's greeks ------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionPosition:
    """``quantity`` contracts (negative: short) with their per-unit greeks."""

    contract: OptionContract
    quantity: float
    greeks: OptionGreeks

    def __post_init__(self) -> None:
        _finite("quantity", self.quantity)


@dataclass(frozen=True)
class StockPosition:
    """``quantity`` units of the underlying itself (negative: short); delta 1 per unit."""

    underlying: str
    quantity: float

    def __post_init__(self) -> None:
        _finite("quantity", self.quantity)


@dataclass(frozen=True)
class PortfolioGreeks:
    """Greeks of a book. Per underlying: ``delta_units`` (units of the underlying, i.e. the
    stock position with the same first-order exposure) and ``gamma_units`` (change of
    delta_units per one currency unit of that spot). Totals in currency:

    - ``delta_currency``: sum of delta_units x spot (the stock value with the same exposure;
      / 100 is the first-order P&L of a 1% rise of every underlying);
    - ``gamma_currency``: sum of gamma_units x spot^2 / 100, the change of the share delta,
      valued at spot, for a 1% rise of every underlying ("1% dollar gamma");
    - ``vega``: per 1.00 of volatility on every option at once; ``theta``: per year (see
      ``theta_per_day``); ``rho``: per 1.00 of the rate."""

    delta_units: Mapping[str, float]
    gamma_units: Mapping[str, float]
    delta_currency: float
    gamma_currency: float
    vega: float
    theta: float
    rho: float

    @property
    def theta_per_day(self) -> float:
        return self.theta / DAYS_PER_YEAR


def portfolio_greeks(
    positions: Iterable[OptionPosition | StockPosition], spots: Mapping[str, float]
) -> PortfolioGreeks:
    """Sums quantity x multiplier x greek over the option positions, plus delta 1 per unit of
    stock; ``spots`` (underlying -> spot) turns share deltas and gammas into currency."""
    delta: dict[str, float] = {}
    gamma: dict[str, float] = {}
    vega = theta = rho = 0.0
    for position in positions:
        if isinstance(position, StockPosition):
            name, size, greeks = position.underlying, position.quantity, None
        elif isinstance(position, OptionPosition):
            name, greeks = position.contract.underlying, position.greeks
            size = position.quantity * position.contract.multiplier
        else:
            raise ValueError(f"positions must be OptionPosition or StockPosition, got {position!r}")
        if name not in spots:
            raise ValueError(f"spots has no spot for underlying {name!r}")
        delta[name] = delta.get(name, 0.0) + size * (1.0 if greeks is None else greeks.delta)
        gamma[name] = gamma.get(name, 0.0) + (0.0 if greeks is None else size * greeks.gamma)
        if greeks is not None:
            vega += size * greeks.vega
            theta += size * greeks.theta
            rho += size * greeks.rho
    return PortfolioGreeks(
        delta_units=MappingProxyType(delta),
        gamma_units=MappingProxyType(gamma),
        delta_currency=sum(d * spots[n] for n, d in delta.items()),
        gamma_currency=sum(g * spots[n] ** 2 / 100 for n, g in gamma.items()),
        vega=vega,
        theta=theta,
        rho=rho,
    )
