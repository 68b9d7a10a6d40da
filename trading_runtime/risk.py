"""The pre-trade risk engine: every order is checked against its account's limits before it is
sent, and a denial names the check and the numbers.

Limits are judged on the account as it would be if the order and every other open order of
the account filled at the last price, so a burst of orders cannot slip past a limit one by one.
An order that makes a position smaller is always allowed unless trading is halted: a limit that
a price move pushed past can only be worked back inside.

Futures (asset class ``future``) do not pay their notional: an order that adds contracts needs
their initial margin (the instrument's per-contract ``initial_margin``, else ``futures_margin``
of the notional) in the cash left free by working buys and by the margin of the futures held
and working. Exposure limits count their notional (quantity x price x multiplier) like any
other position's; ``max_gross_by_asset_class`` caps each asset class's gross.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from trading_runtime.book import Account, Book, TradingState
from trading_runtime.domain import Order, OrderType, Side
from trading_runtime.history import ReturnWindow
from trading_runtime.instruments import Instrument, listed, round_quantity
from trading_runtime.option_risk import GreekLimits
from trading_runtime.options import OptionDesk
from trading_runtime.portfolio.risk import ScenarioPnL, scenario_risk
from trading_runtime.settings import RiskLimits

FUTURE = "future"  # Instrument.asset_class of futures contracts


@dataclass(frozen=True, slots=True)
class Denial:
    check: str
    reason: str

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


# the RiskLimits field (QTIS_RISK_<FIELD>, or a strategy's ``limits``) behind each check that
# has one: what an operator changes when a check's denials are not wanted
LIMIT_OF = {
    "price_band": "price_band",
    "order_rate": "max_orders_per_bar",
    "max_order_quantity": "max_order_quantity",
    "max_order_notional": "max_order_notional",
    "max_position_quantity": "max_position_quantity",
    "max_position_notional": "max_position_notional",
    "short": "allow_short",
    "concentration": "max_symbol_weight",
    "sector_concentration": "max_sector_weight",
    "gross_exposure": "max_gross_exposure",
    "net_exposure": "max_net_exposure",
    "cash": "fee_reserve_bps",
    "margin": "initial_margin",
    "futures_margin": "futures_margin",
    "asset_class_exposure": "max_gross_by_asset_class",
    "max_var": "max_var",
    "max_es": "max_es",
    "max_delta": "max_delta",  # greeks: trading_runtime.option_risk
    "max_gamma": "max_gamma",
    "max_vega": "max_vega",
    "trading_state": "reducing_drawdown",
}


class RiskEngine:
    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.instruments = instruments
        self._cache: dict[str, Exposure] = {}
        self._limits: dict[str, tuple[dict, RiskLimits]] = {}
        self.multipliers = {s: i.multiplier for s, i in instruments.items()}
        self.currencies = {s: i.currency for s, i in instruments.items()}
        self.sectors = {s: i.sector for s, i in instruments.items()}
        self.classes = {s: i.asset_class for s, i in instruments.items()}
        self.returns: ReturnWindow | None = None  # for VaR/ES limits: see use_returns
        self.columns: dict[str, int] = {}
        self._rows: tuple[int, np.ndarray] | None = None
        self.greeks: GreekLimits | None = None  # option greek limits: see use_options

    def use_options(self, desk: OptionDesk) -> None:
        """Judge orders in options and their underlyings on greek limits (option_risk.py)."""
        self.greeks = GreekLimits(desk) if desk.contracts else None

    def use_returns(self, window: ReturnWindow, symbols: list[str]) -> None:
        """Judge VaR/ES limits on ``window`` (the engine's, its columns in ``symbols`` order)."""
        self.returns, self.columns, self._rows = window, {s: i for i, s in enumerate(symbols)}, None

    def _scenario_rows(self) -> np.ndarray | None:
        """The window's bars with any return, missing ones as 0; read once a bar."""
        if self.returns is None:
            return None
        if self._rows is None or self._rows[0] != self.returns.count:
            rows = self.returns.matrix()
            rows = np.nan_to_num(rows[~np.isnan(rows).all(axis=1)])
            self._rows = (self.returns.count, rows)
        return self._rows[1]

    def _limits_of(self, account: Account) -> RiskLimits:
        """The account's limits as a typed object (rebuilt only when they change)."""
        cached = self._limits.get(account.name)
        if cached is None or cached[0] != account.limits:
            cached = (dict(account.limits), RiskLimits.model_construct(**account.limits))
            self._limits[account.name] = cached
        return cached[1]

    def multiplier(self, symbol: str, book: Book | None = None) -> float:
        """The base-currency value of one unit of ``symbol``'s price: its multiplier times its
        currency's FX mark in ``book`` (1.0 in the base currency; docs/multi_currency.md)."""
        multiplier = self.multipliers.get(symbol, 1.0)
        if book is None or not book.fx:
            return multiplier
        return multiplier * book.fx.get(self.currencies.get(symbol), 1.0)

    def base_multipliers(self, book: Book) -> dict[str, float]:
        """``multiplier`` of every instrument (the multipliers themselves in one currency)."""
        if not book.fx:
            return self.multipliers
        return {s: self.multiplier(s, book) for s in self.multipliers}

    def sector(self, symbol: str) -> str | None:
        return self.sectors.get(symbol)

    def is_future(self, symbol: str) -> bool:
        return self.classes.get(symbol) == FUTURE

    def contract_margin(
        self, symbol: str, price: float, limits: RiskLimits, multiplier: float
    ) -> float:
        """Initial margin of one contract of ``symbol`` in the account's money, ``multiplier``
        being one price point's worth in it: the instrument's own figure (in its currency,
        converted by ``multiplier`` over the contract's), else ``limits.futures_margin`` of
        one contract's notional at ``price``."""
        instrument = self.instruments[symbol]
        if instrument.initial_margin is not None:
            return instrument.initial_margin * multiplier / instrument.multiplier
        return limits.futures_margin * price * multiplier

    def check(self, order: Order, book: Book, price: float) -> Denial | None:
        """None if ``order`` may be sent at last price ``price``; else the first failed check.
        An approved order is counted in the account's projected exposure from then on (the
        caller sends every order it approves)."""
        denial = self._check(order, book, price)
        if denial is None and order.account in book.accounts:
            self._exposure_of(book.accounts[order.account], book).add(self, order, book, price)
        return denial

    def _check(self, order: Order, book: Book, price: float) -> Denial | None:
        account = book.accounts[order.account]
        limits = self._limits_of(account)
        instrument = self.instruments.get(order.symbol)
        if instrument is None:
            return Denial("instrument", f"{order.symbol} is not a known instrument")
        if account.state == TradingState.HALTED:
            return Denial("trading_state", f"trading is halted ({account.state_reason})")
        if book.last_bar is not None and not listed(instrument, _day(book.last_bar)):
            return Denial("universe", f"{order.symbol} is not listed on {book.last_bar[:10]}")
        if round_quantity(instrument, order.quantity) != order.quantity:
            return Denial(
                "lot_size", f"{order.quantity} is not a multiple of the lot {instrument.lot_size}"
            )
        for name, value in (("limit", order.limit_price), ("stop", order.stop_price)):
            if value is None:
                continue
            ticks = value / instrument.tick_size
            if abs(ticks - round(ticks)) > 1e-6:
                return Denial(
                    "tick_size", f"{name} {value} is not on the tick {instrument.tick_size}"
                )
            band = limits.price_band
            if name == "limit" and band is not None and abs(value / price - 1) > band:
                return Denial(
                    "price_band",
                    f"{name} {value} is {abs(value / price - 1):.1%} from the last {price}"
                    f" (band {limits.price_band:.0%})",
                )
        held = account.quantity(order.symbol)
        delta = order.side.sign * order.quantity
        before = held + book.pending_quantity(order.account, order.symbol)
        after = before + delta
        if order.reduce_only and not shrinks(held, delta):
            return Denial("reduce_only", f"would not reduce the {held:g} held in {order.symbol}")
        if limits.max_orders_per_bar is not None:
            sent = book.orders_this_bar.get(order.account, 0)
            if sent >= limits.max_orders_per_bar:
                return Denial(
                    "order_rate", f"{sent} orders this bar (limit {limits.max_orders_per_bar})"
                )
        # exempt only if it shrinks what is held and what would be held were every open order
        # filled: against open orders alone it may open a position when they do not fill
        if shrinks(held, delta) and shrinks(before, delta):
            return None
        if account.state == TradingState.REDUCING:
            return Denial("trading_state", f"risk-reducing orders only ({account.state_reason})")
        multiplier = self.multiplier(order.symbol, book)  # notionals in the base currency
        notional = order.quantity * price * multiplier
        for check, value, limit in (
            ("max_order_quantity", order.quantity, limits.max_order_quantity),
            ("max_order_notional", notional, limits.max_order_notional),
            ("max_position_quantity", abs(after), limits.max_position_quantity),
            (
                "max_position_notional",
                abs(after) * price * multiplier,
                limits.max_position_notional,
            ),
        ):
            if limit is not None and value > limit + 1e-9:
                return Denial(check, f"{value:,.2f} above the limit {limit:,.2f}")
        if after < 0 and not limits.allow_short:
            return Denial("short", f"would leave {after:g} {order.symbol}: shorting is off")
        return (
            self._exposure(order, account, book, price, after, limits)
            or self._funds(order, account, book, price, after, limits)
            or self._tail_risk(order, account, book, price, after, limits)
            or self._greeks(order, account, book, limits)
        )

    def _greeks(self, order, account, book, limits) -> Denial | None:
        found = self.greeks and self.greeks.check(order, account, book, limits)
        return Denial(*found) if found else None

    def _exposure_of(self, account: Account, book: Book) -> Exposure:
        key = (account.name, book.step, book.last_bar, account.cash, len(book.cancelling))
        cached = self._cache.get(account.name)
        if cached is None or cached.key != key:
            cached = self._cache[account.name] = Exposure.build(key, self, account, book)
        return cached

    def _exposure(self, order, account, book, price, after, limits) -> Denial | None:
        exposure = self._exposure_of(account, book)
        equity = exposure.equity_at(self, order.symbol, account, book, price)
        if equity <= 0:
            return Denial("equity", f"equity is {equity:,.2f}: nothing can be added")
        instrument = self.instruments[order.symbol]
        new = after * price * self.multiplier(order.symbol, book)
        old = exposure.values.get(order.symbol, 0.0)
        weight = abs(new) / equity
        if limits.max_symbol_weight is not None and weight > limits.max_symbol_weight + 1e-9:
            return Denial(
                "concentration",
                f"{order.symbol} would be {weight:.1%} of equity"
                f" (limit {limits.max_symbol_weight:.0%})",
            )
        sector = instrument.sector
        if limits.max_sector_weight is not None and sector:
            in_sector = exposure.sectors.get(sector, 0.0) - abs(old) + abs(new)
            if in_sector / equity > limits.max_sector_weight + 1e-9:
                return Denial(
                    "sector_concentration",
                    f"sector {sector} would be {in_sector / equity:.1%} of equity"
                    f" (limit {limits.max_sector_weight:.0%})",
                )
        caps = limits.max_gross_by_asset_class or {}
        kind = instrument.asset_class
        if kind in caps:
            now = exposure.classes.get(kind, 0.0)
            then = (now - abs(old) + abs(new)) / equity
            if then > caps[kind] + 1e-9:
                return Denial(
                    "asset_class_exposure",
                    f"{kind} gross would be {then:.2f}x equity (now {now / equity:.2f}x,"
                    f" limit {caps[kind]:.2f}x)",
                )
        gross = (exposure.gross - abs(old) + abs(new)) / equity
        net = abs(exposure.net - old + new) / equity
        if limits.max_gross_exposure is not None and gross > limits.max_gross_exposure + 1e-9:
            return Denial(
                "gross_exposure", f"{gross:.2f}x equity (limit {limits.max_gross_exposure:.2f}x)"
            )
        if limits.max_net_exposure is not None and net > limits.max_net_exposure + 1e-9:
            return Denial(
                "net_exposure", f"{net:.2f}x equity (limit {limits.max_net_exposure:.2f}x)"
            )
        return None

    def _funds(self, order, account, book, price, after, limits) -> Denial | None:
        reserve = 1 + limits.fee_reserve_bps * 1e-4
        exposure = self._exposure_of(account, book)
        multiplier = self.multiplier(order.symbol, book)
        if self.is_future(order.symbol):
            return self._futures_margin(order, account, book, price, after, limits, multiplier)
        if limits.cash_account:
            if order.side != Side.BUY:
                return None
            cost = order.quantity * _order_price(order, price) * multiplier
            free = exposure.cash - exposure.committed * reserve - exposure.margin
            if cost * reserve > free + 1e-9:
                return Denial("cash", f"needs {cost * reserve:,.2f} with fees, {free:,.2f} free")
            return None
        equity = exposure.equity_at(self, order.symbol, account, book, price)
        old = exposure.values.get(order.symbol, 0.0)
        gross = exposure.gross - exposure.classes.get(FUTURE, 0.0)
        gross += abs(after * price * multiplier) - abs(old)
        needed = gross * limits.initial_margin * reserve + exposure.margin
        if needed > equity + 1e-9:
            return Denial("margin", f"needs {needed:,.2f} margin, equity {equity:,.2f}")
        return None

    def _futures_margin(
        self, order, account, book, price, after, limits, multiplier
    ) -> Denial | None:
        """A futures order that adds contracts needs their initial margin (and the fee
        reserve on its notional) in the cash the account has free: its cash as if futures
        fills moved no notional, less working buys and the margin of the futures held and
        working (a margin account: its equity less the other positions' margin)."""
        per = self.contract_margin(order.symbol, price, limits, multiplier)
        before = after - order.side.sign * order.quantity
        contracts = abs(after) - abs(before)
        if contracts <= 1e-12:
            return None
        exposure = self._exposure_of(account, book)
        reserve = limits.fee_reserve_bps * 1e-4
        fees = order.quantity * _order_price(order, price) * multiplier * reserve
        if limits.cash_account:
            base = exposure.cash - exposure.committed * (1 + reserve)
        else:
            equity = exposure.equity_at(self, order.symbol, account, book, price)
            others = exposure.gross - exposure.classes.get(FUTURE, 0.0)
            base = equity - others * limits.initial_margin * (1 + reserve)
        used = exposure.margin - exposure.margins.get(order.symbol, 0.0) + abs(before) * per
        free, needed = base - used, contracts * per + fees
        if needed > free + 1e-9:
            return Denial(
                "futures_margin",
                f"needs {needed:,.2f} ({contracts:g} contracts x {per:,.2f} initial margin"
                f" + {fees:,.2f} fee reserve), {free:,.2f} cash free",
            )
        return None

    def _tail_risk(self, order, account, book, price, after, limits) -> Denial | None:
        """1-bar historical VaR/ES of the account after the order: the return window's bars
        replayed on its projected exposure (off until the window has ``var_min_bars``). An
        order that lowers the VaR/ES passes even above the limit."""
        if limits.max_var is None and limits.max_es is None:
            return None
        rows = self._scenario_rows()
        if rows is None or len(rows) < limits.var_min_bars:
            return None
        exposure = self._exposure_of(account, book)
        if exposure.scenarios is None:
            exposure.scenarios = ScenarioPnL(rows, self.columns, exposure.values)
        equity = exposure.equity_at(self, order.symbol, account, book, price)
        new = after * price * self.multiplier(order.symbol, book)
        delta = new - exposure.values.get(order.symbol, 0.0)
        level = limits.var_level
        now = scenario_risk(exposure.scenarios.with_change(order.symbol, delta), level)
        for check, name, field, limit in (
            ("max_var", "VaR", "var", limits.max_var),
            ("max_es", "ES", "es", limits.max_es),
        ):
            value = getattr(now, field)
            if limit is None or value / equity <= limit + 1e-9:
                continue
            before = getattr(scenario_risk(exposure.scenarios.pnl, level), field) / equity
            if value / equity > before + 1e-12:
                return Denial(
                    check,
                    f"1-bar {level:.0%} {name} would be {value / equity:.2%} of equity,"
                    f" {value:,.2f} (limit {limit:.2%}; {before:.2%} before the order)",
                )
        return None


@dataclass
class Exposure:
    """One account's exposure as it would be once every working order fills, for the bar being
    decided: each symbol's signed value at the last marks, their gross, net and per-sector sums,
    equity and the cash committed to working buys; per asset class the gross; per future the
    initial margin of the position working orders would leave, and the cash as if no futures
    fill had moved its notional. Built once a bar and kept up to date as orders are approved,
    so checking an order costs O(1), not O(symbols)."""

    key: tuple
    values: dict[str, float]
    gross: float
    net: float
    sectors: dict[str, float]
    equity: float
    committed: float  # working buys of everything but futures (futures need margin)
    classes: dict[str, float]  # gross per asset class
    margins: dict[str, float]  # initial margin per future
    cash: float  # as if no futures fill had moved its notional
    scenarios: ScenarioPnL | None = None  # built by the first VaR/ES check of the bar

    @property
    def margin(self) -> float:
        return sum(self.margins.values())

    @classmethod
    def build(cls, key: tuple, risk: RiskEngine, account: Account, book: Book) -> Exposure:
        marks, multipliers = book.marks, risk.base_multipliers(book)
        quantities = {s: p.quantity for s, p in account.positions.items()}
        committed = 0.0
        for order in book.working(account.name):
            s = order.symbol
            quantities[s] = quantities.get(s, 0.0) + order.signed_remaining
            if order.side == Side.BUY and not risk.is_future(s):
                mark = marks.get(s, 0.0)
                committed += order.remaining * _order_price(order, mark) * multipliers.get(s, 1.0)
        values = {s: q * marks.get(s, 0.0) * multipliers.get(s, 1.0) for s, q in quantities.items()}
        sectors: dict[str, float] = {}
        classes: dict[str, float] = {}
        for symbol, value in values.items():
            sector = risk.sectors.get(symbol)
            if sector:
                sectors[sector] = sectors.get(sector, 0.0) + abs(value)
            kind = risk.classes.get(symbol)
            if kind:
                classes[kind] = classes.get(kind, 0.0) + abs(value)
        gross = sum(map(abs, values.values()))
        equity = account.equity_at(marks, book.rates)
        limits = risk._limits_of(account)
        margins = {
            s: abs(q) * risk.contract_margin(s, marks.get(s, 0.0), limits, multipliers.get(s, 1.0))
            for s, q in quantities.items()
            if q and risk.is_future(s)
        }
        # the cash as if futures fills had not moved their notional: the equity less every
        # other position's value (the book pays a future's notional at the fill and counts
        # it in the position's value; with variation-margin accounting that sum is the cash)
        others = [
            p.quantity * marks.get(s, p.avg_price) * multipliers.get(s, 1.0)
            for s, p in account.positions.items()
            if p.quantity and not risk.is_future(s)
        ]
        held = any(p.quantity and risk.is_future(s) for s, p in account.positions.items())
        cash = equity - sum(others) if held else account.cash
        return cls(key, values, gross, sum(values.values()), sectors, equity, committed,
                   classes, margins, cash)  # fmt: skip

    def equity_at(self, risk, symbol, account, book, price) -> float:
        """Equity with ``symbol`` marked at ``price`` instead of its last mark."""
        mark = book.marks.get(symbol)
        if mark is None or price == mark:
            return self.equity
        multiplier = risk.multiplier(symbol, book)
        return self.equity + account.quantity(symbol) * (price - mark) * multiplier

    def add(self, risk: RiskEngine, order: Order, book: Book, price: float) -> None:
        """Count an approved order: its symbol's projected value moves to the new position."""
        account = book.accounts[order.account]
        multiplier = risk.multiplier(order.symbol, book)
        before = account.quantity(order.symbol) + book.pending_quantity(account.name, order.symbol)
        new = (before + order.side.sign * order.quantity) * price * multiplier
        old = self.values.get(order.symbol, 0.0)
        self.values[order.symbol] = new
        self.gross += abs(new) - abs(old)
        self.net += new - old
        sector = risk.sector(order.symbol)
        if sector:
            self.sectors[sector] = self.sectors.get(sector, 0.0) + abs(new) - abs(old)
        kind = risk.classes.get(order.symbol)
        if kind:
            self.classes[kind] = self.classes.get(kind, 0.0) + abs(new) - abs(old)
        if risk.is_future(order.symbol):
            per = risk.contract_margin(order.symbol, price, risk._limits_of(account), multiplier)
            self.margins[order.symbol] = abs(before + order.side.sign * order.quantity) * per
        elif order.side == Side.BUY:
            self.committed += order.quantity * _order_price(order, price) * multiplier
        if self.scenarios is not None:
            self.scenarios.add(order.symbol, new - old)


def _order_price(order: Order, last: float) -> float:
    """The price an order would pay at worst: its limit, else the last price."""
    if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return max(order.limit_price, last) if order.side == Side.BUY else order.limit_price
    return last


def shrinks(before: float, delta: float) -> bool:
    """Does adding ``delta`` make the position smaller without flipping it?"""
    after = before + delta
    return abs(after) <= abs(before) + 1e-9 and after * before >= 0


def _day(ts: str) -> date:
    return datetime.fromisoformat(ts).date()
