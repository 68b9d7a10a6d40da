"""Reconciliation: the book compared with what the broker says it holds, and what to do about a
difference. The broker is the one that trades, so after a crash, a lost update or a manual
trade the broker is right and the book must be told; :func:`reconcile` is a pure function of
the book and a :class:`BrokerState` and returns the events that say so (the engine journals
them): one ``reconciled`` with every difference, then for the ``adopt`` policy the
``book_corrected`` (and order) events after which the book equals the broker, or for ``halt``
a ``risk_state_changed`` to HALTED for each sub-account that trades at the broker.

What is compared:

- positions, in total per symbol over the sub-accounts that trade at the broker (shadow
  accounts never reach it). A correction goes to the first sub-account (in the run's order)
  that holds the symbol, else to the account of an open order in it, else to the first
  sub-account at the broker; it takes the broker's quantity difference and average price.
  Average prices themselves are not compared (brokers average differently).
- cash, by its change since the first reconciliation of the stream: the broker account need
  not hold exactly the run's capital. The first ``reconciled`` journals the baseline (the
  broker's cash and the book's, in its ``broker`` payload); a cash correction goes to the
  first sub-account at the broker. Position corrections move no cash: what the broker's cash
  did is the cash comparison's to find.
- open orders: ours the broker does not have (closed by ``adopt``), ours the journal does not
  have (sent just before a crash: recognised by the client id scheme
  ``{account}-{stamp}-{symbol}[-stop|-N]`` and adopted as open orders under either policy, so
  the order table stays true), orders QTIS did not send (reported only), and orders both
  have whose quantity or fill differs (reported only: fills are the venue adapter's to
  deliver, they carry prices a reconciliation does not know).

:class:`Reconciler` decides when: at start, after the broker reports a reconnect, and every
``QTIS_LIVE_RECONCILE_MINUTES``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from core.errors import QtisError
from trading_runtime import events as ev
from trading_runtime.book import Account, Book, TradingState
from trading_runtime.commands import risk_state
from trading_runtime.domain import Order, OrderType, Side
from trading_runtime.settings import LiveSettings

POLICIES = ("adopt", "halt")
TRIGGERS = ("start", "reconnect", "periodic")
ACTOR = "reconcile"
QUANTITY_TOLERANCE = 1e-6  # shares: fractional shares exist, float sums drift below this
CASH_TOLERANCE = 0.01  # one cent
# the engine's client ids (engine.py, stops.py, schedules.py); account names are [A-Za-z0-9_]
_OURS = re.compile(r"^(?P<account>[A-Za-z0-9_]+)-(?P<stamp>\d{8}T\d{6})-(?P<rest>.+)$")

log = logging.getLogger(__name__)


class ReconcileError(QtisError):
    """Reconciliation cannot run as asked; the message says what to change."""


class BrokerOrder(NamedTuple):
    """An open order at the broker. A plain ``(symbol, side, quantity, filled)`` tuple is one;
    type and prices matter only to adopt an order the journal lacks (a stop needs its price)."""

    symbol: str
    side: str
    quantity: float
    filled: float = 0.0
    type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None


@dataclass(frozen=True)
class BrokerState:
    """What the broker reports: ``positions`` {symbol: (quantity, average price)}, ``cash``,
    ``open_orders`` {client id: BrokerOrder or a tuple of its fields}, taken ``as_of``."""

    positions: Mapping[str, tuple[float, float]]
    cash: float
    open_orders: Mapping[str, tuple]
    as_of: datetime

    def __post_init__(self) -> None:
        orders = {cid: BrokerOrder(*o) for cid, o in self.open_orders.items()}
        object.__setattr__(self, "open_orders", orders)


@dataclass
class _Found:
    """What one comparison found: the differences, and the events that resolve them."""

    differences: list[dict[str, Any]]
    corrections: list[ev.Event]  # applied by the adopt policy only
    adopted: list[ev.Event]  # our orders the journal lacked: journaled under either policy


def reconcile(
    book: Book,
    state: BrokerState,
    trigger: str,
    policy: str,
    *,
    tolerance: float = QUANTITY_TOLERANCE,
    cash_tolerance: float = CASH_TOLERANCE,
) -> list[ev.Event]:
    """The events of comparing ``book`` with ``state``: a ``reconciled``, the adopted orders,
    then the ``adopt`` policy's corrections or the ``halt`` policy's halts."""
    if policy not in POLICIES:
        raise ReconcileError(f"unknown reconciliation policy {policy!r}: one of {POLICIES}")
    accounts = [a for a in book.accounts.values() if not a.shadow]
    if not accounts:
        raise ReconcileError("no sub-account trades at the broker (all are shadow accounts)")
    reason = f"reconciliation ({trigger})"
    found = _Found([], [], [])
    _orders(book, accounts, state, reason, found)
    _positions(book, accounts, state, reason, tolerance, found)
    baseline = _cash(book, accounts, state, reason, cash_tolerance, found)
    matched = not found.differences
    action = "none" if matched else "adopted" if policy == "adopt" else "halted"
    broker = {
        "as_of": state.as_of.isoformat(),
        "cash": state.cash,
        "positions": len(state.positions),
        "open_orders": len(state.open_orders),
        "baseline": baseline,
    }
    out: list[ev.Event] = [
        ev.Reconciled(trigger, matched, tuple(found.differences), action, broker),
        *found.adopted,
    ]
    if action == "adopted":
        out += found.corrections
    elif action == "halted":
        out += _halts(accounts, found.differences, state.as_of, reason)
    return out


def _positions(
    book: Book,
    accounts: list[Account],
    state: BrokerState,
    reason: str,
    tolerance: float,
    found: _Found,
) -> None:
    totals: dict[str, float] = {}
    for account in accounts:
        for symbol, position in account.positions.items():
            totals[symbol] = totals.get(symbol, 0.0) + position.quantity
    for symbol in sorted(totals.keys() | state.positions.keys()):
        held = totals.get(symbol, 0.0)
        at_broker, price = state.positions.get(symbol, (0.0, None))
        if abs(at_broker - held) <= tolerance:
            continue
        account = _holder(book, accounts, symbol, tolerance)
        found.differences.append(
            {
                "kind": "position",
                "symbol": symbol,
                "book": held,
                "broker": at_broker,
                "account": account.name,
            }
        )
        before = account.quantity(symbol)
        after = before + at_broker - held
        found.corrections.append(
            ev.BookCorrected(account.name, symbol, before, after, price, 0.0, reason)
        )


def _holder(book: Book, accounts: list[Account], symbol: str, tolerance: float) -> Account:
    """Where a correction of ``symbol`` goes: the first account holding it, else the account
    of an open order in it, else the first account at the broker."""
    for account in accounts:
        if abs(account.quantity(symbol)) > tolerance:
            return account
    names = {a.name: a for a in accounts}
    for order in book.open.values():
        if order.symbol == symbol and order.account in names:
            return names[order.account]
    return accounts[0]


def _cash(
    book: Book,
    accounts: list[Account],
    state: BrokerState,
    reason: str,
    tolerance: float,
    found: _Found,
) -> dict[str, Any]:
    """Compare the cash moves since the baseline; returns the baseline (a new one the first
    time, which nothing can differ from)."""
    cash = sum(a.cash for a in accounts)
    baseline = book.reconcile_baseline
    if baseline is None:
        return {"broker_cash": state.cash, "book_cash": cash, "as_of": state.as_of.isoformat()}
    broker_change = state.cash - baseline["broker_cash"]
    book_change = cash - baseline["book_cash"]
    difference = broker_change - book_change
    if abs(difference) > tolerance:
        account = accounts[0].name
        found.differences.append(
            {
                "kind": "cash",
                "book_change": book_change,
                "broker_change": broker_change,
                "difference": difference,
                "account": account,
            }
        )
        found.corrections.append(
            ev.BookCorrected(account, None, 0.0, 0.0, None, difference, reason)
        )
    return baseline


def _orders(
    book: Book, accounts: list[Account], state: BrokerState, reason: str, found: _Found
) -> None:
    names = {a.name for a in accounts}
    at_broker = state.open_orders
    for cid, order in book.open.items():
        if order.account not in names:
            continue
        theirs = at_broker.get(cid)
        if theirs is None:
            found.differences.append({"kind": "order_missing", **_described(cid, order)})
            found.corrections.append(
                ev.OrderCancelled(
                    cid,
                    f"not open at the broker: {reason}",
                    ACTOR,
                    key=f"{ev.ORDER_CANCELLED}:{cid}",
                )
            )
        elif not _same(order, theirs):
            found.differences.append(_mismatch(cid, order, theirs))
    for cid, theirs in at_broker.items():
        if cid in book.open:
            continue
        known = book.orders.get(cid)
        if known is not None:  # closed in the book, open at the broker: a lost update
            found.differences.append(_mismatch(cid, known, theirs))
            continue
        order = own_order(cid, theirs, names)
        if isinstance(order, Order):
            found.differences.append({"kind": "order_unjournaled", **_described(cid, order)})
            found.adopted += [
                ev.OrderSubmitted(order, book.step, None, key=f"submitted:{cid}"),
                ev.OrderAccepted(cid, key=f"accepted:{cid}"),
            ]
        else:
            found.differences.append(
                {
                    "kind": "order_foreign",
                    "client_id": cid,
                    "account": None,
                    **theirs._asdict(),
                    "note": order or "not sent by this run",
                }
            )


def _same(order: Order, theirs: BrokerOrder) -> bool:
    return (
        order.symbol == theirs.symbol
        and order.side == Side(theirs.side)
        and abs(order.quantity - theirs.quantity) <= QUANTITY_TOLERANCE
        and abs(order.filled - theirs.filled) <= QUANTITY_TOLERANCE
    )


def _mismatch(cid: str, order: Order, theirs: BrokerOrder) -> dict[str, Any]:
    return {
        "kind": "order_mismatch",
        "client_id": cid,
        "account": order.account,
        "book": {**_described(cid, order), "status": order.status.value},
        "broker": theirs._asdict(),
    }


def _described(cid: str, order: Order) -> dict[str, Any]:
    return {
        "client_id": cid,
        "account": order.account,
        "symbol": order.symbol,
        "side": order.side.value,
        "quantity": order.quantity,
        "filled": order.filled,
    }


def own_order(client_id: str, theirs: BrokerOrder, accounts: Iterable[str]) -> Order | str | None:
    """The order of ours that ``client_id`` names, rebuilt from the broker's report of it; a
    string says why an id of our scheme cannot be adopted; None: not one of ours."""
    match = _OURS.match(client_id)
    if match is None or match["account"] not in accounts:
        return None
    rest, symbol = match["rest"], theirs.symbol
    parent, tag = None, "entry"
    if rest == f"{symbol}-stop":
        tag = "stop"
    elif rest.startswith(f"{symbol}-") and rest[len(symbol) + 1 :].isdigit():
        parent, tag = client_id.rsplit("-", 1)[0], "algo"
    elif rest != symbol:
        return None
    created = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    try:
        return Order(
            client_id,
            match["account"],
            symbol,
            Side(theirs.side),
            theirs.quantity,
            OrderType(theirs.type),
            limit_price=theirs.limit_price,
            stop_price=theirs.stop_price,
            created=created,
            tag=tag,
            parent_id=parent,
            filled=theirs.filled,
        )
    except ValueError as exc:
        return f"ours, but cannot be adopted: {exc}"


def _halts(
    accounts: list[Account], differences: list[dict[str, Any]], as_of: datetime, reason: str
) -> list[ev.Event]:
    what = summary(differences)
    return [
        risk_state(
            a.name,
            TradingState.HALTED,
            f"{reason} found {what}",
            ACTOR,
            f"{ACTOR}:{as_of.isoformat()}:{a.name}",
        )
        for a in accounts
        if a.state != TradingState.HALTED
    ]


def summary(differences: Iterable[dict[str, Any]], most: int = 10) -> str:
    """The differences in a line: "2 differences: position AAPL, cash"."""
    differences = list(differences)
    names = [
        f"{d['kind']} {d.get('symbol') or d.get('client_id') or ''}".strip() for d in differences
    ]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    plural = "s" if len(names) != 1 else ""
    return f"{len(names)} difference{plural}: {', '.join(names[:most])}{more}"


class Reconciler:
    """When to reconcile: on the first check, after :meth:`reconnected` (the broker adapter
    calls it from any thread), and every ``minutes``. The engine calls :meth:`check` between
    bars, after the venue's answers are applied, and journals what it returns.

    A comparison races the broker's updates: an order can fill after the book last heard
    from the broker and before its positions are read. So a comparison that differs is made
    again, up to ``attempts`` in all, each time after ``settle`` (the engine: the open orders'
    states read back from the broker and applied to the book); only the last one is
    journaled."""

    def __init__(
        self,
        broker_state: Callable[[], BrokerState],
        policy: str,
        minutes: float,
        clock: Callable[[], float] = time.monotonic,
        attempts: int = 3,
    ) -> None:
        if policy not in POLICIES:
            raise ReconcileError(f"unknown reconciliation policy {policy!r}: one of {POLICIES}")
        if attempts < 1:
            raise ReconcileError(f"reconciliation attempts must be at least 1, not {attempts}")
        self.broker_state, self.policy = broker_state, policy
        self.period, self.clock, self.attempts = minutes * 60.0, clock, attempts
        self._last: float | None = None
        self._reconnected = threading.Event()

    @classmethod
    def from_settings(
        cls,
        broker_state: Callable[[], BrokerState],
        settings: LiveSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> Reconciler:
        return cls(broker_state, settings.reconcile_policy, settings.reconcile_minutes, clock,
                   settings.reconcile_attempts)  # fmt: skip

    def reconnected(self) -> None:
        """The broker's connection came back: reconcile at the next check."""
        self._reconnected.set()

    def due(self) -> str | None:
        """The trigger of a reconciliation due now, or None."""
        if self._last is None:
            return "start"
        if self._reconnected.is_set():
            return "reconnect"
        if self.clock() - self._last >= self.period:
            return "periodic"
        return None

    def check(
        self,
        book: Book,
        trigger: str | None = None,
        settle: Callable[[], None] | None = None,
    ) -> list[ev.Event]:
        """Reconcile ``book`` if one is due (or ``trigger`` is given): its events, else [].
        ``settle`` brings the book up to date with the broker before a comparison is made
        again."""
        trigger = trigger or self.due()
        if trigger is None:
            return []
        self._reconnected.clear()  # a reconnect while the broker is asked counts again
        for attempt in range(self.attempts):
            if attempt:
                settle()
            events = reconcile(book, self.broker_state(), trigger, self.policy)
            if events[0].matched or settle is None:
                break
            if attempt + 1 < self.attempts:
                log.info("reconciliation (%s): %d differences; reading the open orders back"
                         " and comparing again", trigger, len(events[0].differences))  # fmt: skip
        self._last = self.clock()
        return events
