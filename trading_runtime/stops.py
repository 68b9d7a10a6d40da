"""Protective stops: a stop order for every settled position (tightened as a trailing stop
moves), and after a stop-out, staying out of the symbol until its signal has turned."""

from __future__ import annotations

import numpy as np

from trading_runtime import events as ev
from trading_runtime.book import Account, Book
from trading_runtime.broker import CrossSection
from trading_runtime.domain import Order, OrderType, Side, TimeInForce
from trading_runtime.instruments import round_price
from trading_runtime.routing import EngineHooks
from trading_runtime.sizing import StopPolicy


def working_stops(book: Book, account: str, symbol: str) -> list[Order]:
    """The stop orders working for ``account``'s position in ``symbol``."""
    return [o for o in book.working(account, symbol) if o.tag == "stop"]


class Stops:
    """Protective and trailing stops of the run's accounts, placed and moved through ``hooks``."""

    def __init__(self, hooks: EngineHooks) -> None:
        self.hooks = hooks

    def respect_stop_outs(self, account: Account, strength: np.ndarray, step: int) -> None:
        """After a stop-out, stay out until the signal has turned (``strength`` is zeroed for
        the symbols still out)."""
        for symbol, direction in list(account.stopped.items()):
            i = self.hooks.index[symbol]
            if strength[i] * direction <= 0:
                key = f"stop_cleared:{account.name}:{symbol}:{step}"
                self.hooks.emit(ev.StopCleared(account.name, symbol, key=key))
            else:
                strength[i] = 0.0

    def manage(
        self, book: Book, policy: StopPolicy, account: Account, bar: CrossSection, atr: np.ndarray
    ) -> None:
        """A protective stop for every settled position of the run's symbols (not one adopted
        from the broker in a symbol it does not trade), tightened as a trailing stop moves."""
        stamp = ev.stamp(bar.ts)
        for symbol, position in list(account.positions.items()):
            if symbol not in self.hooks.index:
                continue
            stops = working_stops(book, account.name, symbol)
            if position.quantity == 0:
                for stop in stops:
                    self.hooks.cancel(stop.client_id, "position closed")
                continue
            if any(o.tag != "stop" for o in book.working(account.name, symbol)):
                continue  # not settled: orders are still working
            i = self.hooks.index[symbol]
            direction = 1 if position.quantity > 0 else -1
            level = policy.level(direction, position.avg_price, bar.close[i], atr[i])
            if level is None or level <= 0 or np.isnan(bar.close[i]):
                continue
            instrument = self.hooks.instruments[symbol]
            level = round_price(instrument, level)
            quantity = abs(position.quantity)
            if stops:
                old = stops[0]
                moved = (
                    policy.trail_atr is not None
                    and policy.tighter(direction, level, old.stop_price)
                    and abs(level - old.stop_price) >= instrument.tick_size
                )
                if not moved and old.remaining == quantity:
                    continue
                level = level if moved else old.stop_price
                self.hooks.cancel(old.client_id, "stop moved" if moved else "position size changed")
            stop = Order(
                f"{account.name}-{stamp}-{symbol}-stop",
                account.name,
                symbol,
                Side.SELL if direction > 0 else Side.BUY,
                quantity,
                OrderType.STOP,
                TimeInForce.GTC,
                stop_price=level,
                reduce_only=True,
                created=bar.ts,
                tag="stop",
            )
            self.hooks.submit(book, stop, float(bar.close[i]))
