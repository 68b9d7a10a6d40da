"""A risk-checked book built by hand: three instruments, one account under tight limits, and
events applied the way the engine applies them (bars close, orders are sent and filled)."""

from __future__ import annotations

from datetime import UTC, datetime

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.domain import Fill, Order
from trading_runtime.instruments import Instrument
from trading_runtime.settings import RiskLimits

TS = datetime(2024, 1, 2, tzinfo=UTC)
INSTRUMENTS = {
    "A": Instrument("A", sector="tech"),
    "B": Instrument("B", sector="tech"),
    "C": Instrument("C", sector="energy", lot_size=10),
}
LIMITS = dict(
    max_order_notional=30_000,
    max_order_quantity=2_000,
    max_position_notional=45_000,
    max_symbol_weight=0.4,
    max_sector_weight=0.6,
    max_gross_exposure=0.9,
    max_net_exposure=0.8,
    max_orders_per_bar=3,
    reducing_drawdown=None,
    halt_drawdown=None,
)


def new_book(**limits) -> Book:
    merged = RiskLimits(**{**LIMITS, **limits}).model_dump()
    return Book().apply_all([ev.RunStarted({}, (ev.AccountSpec("a", 100_000, merged),))])


def close_bar(book: Book, step: int, prices: dict[str, float]) -> None:
    book.apply(ev.BarClosed(TS.isoformat(), step, prices))


def fill(book: Book, order: Order, price: float, n) -> None:
    """Fill a sent ``order`` at ``price`` with a 1 bp fee."""
    done = Fill(
        f"f{n}",
        order.client_id,
        "a",
        order.symbol,
        order.side,
        order.quantity,
        price,
        1e-4 * order.quantity * price,
        TS,
        price,
    )
    book.apply(ev.OrderFilled(done))


def trade(book: Book, order: Order, price: float, n) -> None:
    send(book, order)
    fill(book, order, price, n)


def send(book: Book, order: Order) -> None:
    book.apply(ev.OrderSubmitted(order, book.step))
    book.apply(ev.OrderAccepted(order.client_id))
