"""Venue routing: which venue an account's orders go to (the real one, or the shadow accounts'
own simulator), the pre-trade risk check every order passes before it is journaled, and the
orders and cancels of a bar sent after its events are committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.broker import CrossSection
from trading_runtime.commands import cancel_request
from trading_runtime.domain import Order
from trading_runtime.execution import Execution
from trading_runtime.instruments import Instrument
from trading_runtime.risk import RiskEngine


@dataclass(frozen=True)
class EngineHooks:
    """How the engine's order helpers (schedules, stops) reach it: the instruments and their
    column in the bar arrays; ``emit`` journals an event, ``submit(book, order, price)``
    risk-checks and journals an order (a slice or a stop: no decision of its own),
    ``cancel(client_id, reason)`` requests a cancel."""

    instruments: dict[str, Instrument]
    index: dict[str, int]
    emit: Callable[[ev.Event], None]
    submit: Callable[[Book, Order, float], None]
    cancel: Callable[[str, str], None]


class Router:
    """Collects a bar's approved orders and cancels (journaled through ``emit``) and sends them
    once the journal holds them."""

    def __init__(
        self,
        broker: Execution,
        shadow_broker: Execution | None,
        shadow: set[str],
        risk: RiskEngine,
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.broker, self.shadow_broker, self.shadow = broker, shadow_broker, shadow
        self.risk, self.emit = risk, emit
        self.venues: list[Execution] = [v for v in (broker, shadow_broker) if v is not None]
        self.to_send: list[Order] = []
        self.to_cancel: list[str] = []

    def venue(self, account: str) -> Execution:
        """Where ``account``'s orders go: the real venue, or the shadow accounts' own."""
        return self.shadow_broker if account in self.shadow else self.broker

    def new_bar(self) -> None:
        self.to_send, self.to_cancel = [], []

    def submit(
        self, book: Book, order: Order, price: float, decision: ev.Decision | None = None
    ) -> None:
        """Journal ``order`` as submitted (to be sent after the commit) or as denied, with the
        ``decision`` that made it."""
        denial = self.risk.check(order, book, price)
        if denial is not None:
            key = f"denied:{order.client_id}"
            self.emit(ev.OrderDenied(order, denial.check, str(denial), decision, key=key))
            return
        key = f"submitted:{order.client_id}"
        self.emit(ev.OrderSubmitted(order, book.step, price, decision, key=key))
        self.to_send.append(order)

    def cancel(self, client_id: str, reason: str) -> None:
        """Journal the engine's cancel request; the venue is asked after the commit."""
        self.emit(cancel_request(client_id, reason, "engine"))
        self.to_cancel.append(client_id)

    def queue_cancel(self, client_id: str) -> None:
        """A cancel already journaled (an operator's), to be sent after the commit."""
        self.to_cancel.append(client_id)

    def send(
        self, book: Book, bar: CrossSection, arrived: float, stages: dict[str, float]
    ) -> list[ev.Event]:
        """After the commit: orders and cancels to the venue. Returns its answers, the live
        orders' with the time each stage of this bar took."""
        answers: list[ev.Event] = []
        live = [o for o in self.to_send if o.account not in self.shadow]
        if live:
            sent = self.broker.submit(live, bar.step)
            took = round((time.perf_counter() - arrived) * 1e6, 1)
            stages = {k: round(v, 1) for k, v in stages.items()}
            answers += [replace(e, tick_to_order_us=took, stages_us=stages) for e in sent]
        shadow = [o for o in self.to_send if o.account in self.shadow]
        if shadow:  # after the real orders, and not timed: the hypothetical book is no venue
            answers += self.shadow_broker.submit(shadow, bar.step)
        for client_id in self.to_cancel:
            event = self.venue(book.orders[client_id].account).cancel(client_id, "requested")
            if event is not None:
                answers.append(event)
        return answers
