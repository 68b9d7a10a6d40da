"""Greek limits, a pre-trade check of ``RiskEngine``: an order in an option or in an option's
underlying is judged on the account's greeks as they would be once it and every working order
filled, at the last bar's closes (``trading_runtime.options``). Units (``RiskLimits``):

- ``max_delta``: |delta in currency| / equity, the share-equivalent value of the options and
  the stock in their underlyings (``PortfolioGreeks.delta_currency``) as a multiple of equity;
- ``max_gamma``: |gamma in currency|, the change of that delta for a 1% move of every
  underlying (``gamma_currency``);
- ``max_vega``: |vega| in currency per volatility point (``vega / 100``).

As with VaR, an order that makes the greek smaller in size passes even above its limit (a
hedge must be able to work a breach back). An order in an option at or past its expiry is
denied: the option is settled, not traded.
"""

from __future__ import annotations

from dataclasses import dataclass

from quant.options import PortfolioGreeks
from trading_runtime.book import Account, Book
from trading_runtime.domain import Order
from trading_runtime.options import OptionDesk
from trading_runtime.settings import RiskLimits

# check name -> (what is measured, how it is printed)
_MEASURES = {
    "max_delta": ("delta", lambda g, equity: abs(g.delta_currency) / equity, "{:.3f}x equity"),
    "max_gamma": ("gamma", lambda g, equity: abs(g.gamma_currency), "{:,.2f} per 1%"),
    "max_vega": ("vega", lambda g, equity: abs(g.vega) / 100, "{:,.2f} per vol point"),
}


@dataclass(frozen=True)
class GreekLimits:
    """The greek checks of one run's options (``desk``: their contracts and the bar's closes)."""

    desk: OptionDesk

    def check(
        self, order: Order, account: Account, book: Book, limits: RiskLimits
    ) -> tuple[str, str] | None:
        """(check, reason) of the first limit the order breaches, else None."""
        desk, symbol = self.desk, order.symbol
        if symbol in desk.contracts and desk.day is not None and not desk.live(symbol, desk.day):
            expiry = desk.contracts[symbol].expiry
            return "option_expired", f"{symbol} expired on {expiry}: it is settled, not traded"
        wanted = [c for c in _MEASURES if getattr(limits, c) is not None]
        if not wanted or (symbol not in desk.contracts and symbol not in desk.stock_multiplier):
            return None
        if account.equity <= 0:
            return None  # the equity check denies it
        before = desk.holdings(book, account.name)
        after = dict(before)
        after[symbol] = after.get(symbol, 0.0) + order.side.sign * order.quantity
        greeks_before, greeks_after = desk.greeks(before), desk.greeks(after)
        for check in wanted:
            denial = _judge(check, greeks_before, greeks_after, account.equity, limits)
            if denial is not None:
                return denial
        return None


def _judge(
    check: str, before: PortfolioGreeks, after: PortfolioGreeks, equity: float, limits
) -> tuple[str, str] | None:
    name, measure, shown = _MEASURES[check]
    limit = getattr(limits, check)
    now, then = measure(before, equity), measure(after, equity)
    if then <= limit + 1e-9 or then <= now + 1e-12:
        return None
    return check, (
        f"{name} would be {shown.format(then)} after the order (limit {shown.format(limit)};"
        f" {shown.format(now)} before)"
    )
