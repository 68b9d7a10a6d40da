"""The projection: orders, positions, cash, PnL and risk state, derived from journal events and
nothing else. ``Book.apply`` is the only way state changes, so replaying a stream (or a snapshot
and the events after it) rebuilds exactly what the engine had.

Money is in the run's base currency: a fill of an instrument in another currency moves the cash
by its ``cash_flow`` (converted at the rate the fill carries: the one journaled conversion), and
positions are valued at their marks times the FX marks each ``bar_closed`` carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from trading_runtime import events as ev
from trading_runtime.domain import Order, OrderStatus, Position

if TYPE_CHECKING:
    from trading_runtime.journal import Journal


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that make a position smaller
    HALTED = "halted"  # nothing is sent


@dataclass
class Account:
    """One strategy's sub-account."""

    name: str
    initial: float
    cash: float
    limits: dict[str, Any]
    positions: dict[str, Position] = field(default_factory=dict)
    fees: float = 0.0
    slippage: float = 0.0
    state: TradingState = TradingState.ACTIVE
    state_reason: str = ""
    peak: float = 0.0
    equity: float = 0.0
    stopped: dict[str, int] = field(default_factory=dict)  # symbol -> direction stopped out
    shadow: bool = False  # a hypothetical book: its orders never reach the real venue

    def quantity(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return position.quantity if position else 0.0

    def equity_at(self, marks: dict[str, float], rates: dict[str, float] | None = None) -> float:
        """Cash and the marked positions (a flat one adds exactly nothing: skipped), those of
        ``rates``' symbols converted to the base currency at their rate."""
        rates = rates or {}
        return self.cash + sum(
            p.market_value(marks.get(s, p.avg_price), rates.get(s, 1.0))
            for s, p in self.positions.items()
            if p.quantity
        )

    @property
    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values())

    @property
    def drawdown(self) -> float:
        return 1.0 - self.equity / self.peak if self.peak > 0 else 0.0


@dataclass
class Schedule:
    """A running TWAP/VWAP: how it started and how many of its slices were sent."""

    started: ev.ScheduleStarted
    done: int = 0

    def to_state(self) -> dict[str, Any]:
        return {**self.started.to_payload(), "done": self.done}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Schedule:
        return cls(ev.ScheduleStarted.from_payload(state), state["done"])


class Book:
    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.base_currency = "USD"  # what cash, P&L and limits are in
        self.fx: dict[str, float] = {}  # the last FX mark of each foreign currency
        self.currencies: dict[str, str] = {}  # symbol -> its currency, when not the base
        self.rates: dict[str, float] = {}  # symbol -> its currency's FX mark (derived)
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.open: dict[str, Order] = {}
        self.cancelling: set[str] = set()  # cancel requested, not yet confirmed by the venue
        # open orders not being cancelled, by (account, symbol): what risk checks look at
        self._working: dict[tuple[str, str], dict[str, Order]] = {}
        self.submitted_step: dict[str, int] = {}
        self.marks: dict[str, float] = {}
        self.last_bar: str | None = None
        self.step = -1  # index of the last closed bar
        self.pending_commands: dict[int, ev.Command] = {}
        self.applied_commands: set[int] = set()
        self.schedules: dict[str, Schedule] = {}
        self.orders_this_bar: dict[str, int] = {}
        self.finished = False
        self.events = 0
        # the first reconciliation's cash, the broker's and the book's: later ones compare
        # the changes since (reconcile.py)
        self.reconcile_baseline: dict[str, Any] | None = None

    # --- applying events --------------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        getattr(self, f"_on_{event.type}")(event)
        self.events += 1

    def apply_all(self, events) -> Book:
        for event in events:
            self.apply(event)
        return self

    def _on_run_started(self, e: ev.RunStarted) -> None:
        self.config = e.config
        self.base_currency = e.base_currency or "USD"
        for spec in e.accounts:
            capital = float(spec.capital)
            self.accounts[spec.name] = Account(
                spec.name,
                capital,
                capital,
                dict(spec.limits),
                peak=capital,
                equity=capital,
                shadow=spec.shadow,
            )

    def _on_order_submitted(self, e: ev.OrderSubmitted) -> None:
        order = e.order.moved_to(OrderStatus.SUBMITTED)
        self.orders[order.client_id] = self.open[order.client_id] = order
        self._track(order)
        self.submitted_step[order.client_id] = e.step
        self.orders_this_bar[order.account] = self.orders_this_bar.get(order.account, 0) + 1
        if order.parent_id in self.schedules:
            self.schedules[order.parent_id].done += 1

    def _on_portfolio_rebalanced(self, e: ev.PortfolioRebalanced) -> None:
        """A record for reports: positions follow from the orders it led to."""

    def _on_risk_alert(self, e: ev.RiskAlert) -> None:
        """A record for people and monitors: it changes no state (limits do that)."""

    def _on_bar_late(self, e: ev.BarLate) -> None:
        """A record: a late or corrected bar is never traded on."""

    def _on_feed_status(self, e: ev.FeedStatus) -> None:
        """A record: the feed decides whether a bar is traded, before the engine sees it."""

    def _on_reconciled(self, e: ev.Reconciled) -> None:
        """A record (a correction, when the policy adopts the broker's state, follows it), and
        the first one's cash baseline."""
        if self.reconcile_baseline is None:
            self.reconcile_baseline = e.broker.get("baseline")

    def _on_book_corrected(self, e: ev.BookCorrected) -> None:
        account = self.accounts[e.account]
        account.cash += e.cash_delta
        if e.symbol is None:
            return
        held = account.positions.get(e.symbol) or Position(e.symbol)
        avg = e.price if e.price is not None and e.quantity_after else held.avg_price
        account.positions[e.symbol] = replace(
            held, quantity=e.quantity_after, avg_price=avg if e.quantity_after else 0.0
        )
        if e.price is not None:
            self.marks.setdefault(e.symbol, e.price)

    def _on_order_denied(self, e: ev.OrderDenied) -> None:
        order = e.order.moved_to(OrderStatus.DENIED, reason=e.reason)
        self.orders[order.client_id] = order

    def _track(self, order: Order) -> None:
        """Keep the open order table and the working index in step with ``order``."""
        cid, key = order.client_id, (order.account, order.symbol)
        if order.status.is_open:
            self.open[cid] = order
        else:
            self.open.pop(cid, None)
            self.cancelling.discard(cid)
        if order.status.is_open and cid not in self.cancelling:
            self._working.setdefault(key, {})[cid] = order
        elif key in self._working:
            self._working[key].pop(cid, None)
            if not self._working[key]:
                del self._working[key]

    def _move(self, client_id: str, status: OrderStatus, reason: str | None = None) -> None:
        order = self.orders[client_id].moved_to(status, reason=reason)
        self.orders[client_id] = order
        self._track(order)

    def _on_cancel_requested(self, e: ev.CancelRequested) -> None:
        if e.client_id in self.open:
            self.cancelling.add(e.client_id)
            self._track(self.open[e.client_id])

    def _on_order_accepted(self, e: ev.OrderAccepted) -> None:
        self._move(e.client_id, OrderStatus.ACCEPTED)

    def _on_order_rejected(self, e: ev.OrderRejected) -> None:
        self._move(e.client_id, OrderStatus.REJECTED, e.reason)

    def _on_order_cancelled(self, e: ev.OrderCancelled) -> None:
        self._move(e.client_id, OrderStatus.CANCELLED, e.reason)

    def _on_order_expired(self, e: ev.OrderExpired) -> None:
        self._move(e.client_id, OrderStatus.EXPIRED, e.reason)

    def _on_order_triggered(self, e: ev.OrderTriggered) -> None:
        order = replace(self.orders[e.client_id], triggered=True)
        self.orders[order.client_id] = order
        self._track(order)

    def _on_order_filled(self, e: ev.OrderFilled) -> None:
        fill = e.fill
        order = self.orders[fill.client_id].with_fill(fill)
        self.orders[fill.client_id] = order
        self._track(order)
        account = self.accounts[fill.account]
        held = account.positions.get(fill.symbol) or Position(
            fill.symbol, multiplier=fill.multiplier
        )
        account.positions[fill.symbol] = held.with_fill(fill)
        account.cash += fill.cash_flow
        account.fees += fill.fee * fill.fx_rate
        account.slippage += fill.slippage_cost * fill.fx_rate
        if fill.currency is not None:
            self.currencies[fill.symbol] = fill.currency
            self.rates[fill.symbol] = self.fx.setdefault(fill.currency, fill.fx_rate)
        if order.tag == "stop":
            account.stopped[fill.symbol] = 1 if fill.side == "sell" else -1
        self.marks.setdefault(fill.symbol, fill.price)

    def _on_bar_closed(self, e: ev.BarClosed) -> None:
        self.marks.update(e.marks)
        if e.fx:
            self.fx.update(e.fx)
            self.rates = {s: self.fx[c] for s, c in self.currencies.items() if c in self.fx}
        self.last_bar, self.step = e.ts, e.step
        self.orders_this_bar.clear()
        for account in self.accounts.values():
            account.equity = account.equity_at(self.marks, self.rates)
            account.peak = max(account.peak, account.equity)

    def _on_risk_state_changed(self, e: ev.RiskStateChanged) -> None:
        account = self.accounts[e.account]
        account.state, account.state_reason = TradingState(e.state), e.reason
        if e.reset_peak:
            account.peak = account.equity

    def _on_limits_changed(self, e: ev.LimitsChanged) -> None:
        self.accounts[e.account].limits.update(e.limits)

    def _on_schedule_started(self, e: ev.ScheduleStarted) -> None:
        self.schedules[e.parent_id] = Schedule(e)

    def _on_schedule_ended(self, e: ev.ScheduleEnded) -> None:
        self.schedules.pop(e.parent_id, None)

    def _on_command(self, e: ev.Command) -> None:
        if e.seq is not None and e.seq not in self.applied_commands:
            self.pending_commands[e.seq] = e

    def _on_command_applied(self, e: ev.CommandApplied) -> None:
        self.applied_commands.add(e.command_seq)
        self.pending_commands.pop(e.command_seq, None)

    def _on_stop_cleared(self, e: ev.StopCleared) -> None:
        self.accounts[e.account].stopped.pop(e.symbol, None)

    def _on_option_settled(self, e: ev.OptionSettled) -> None:
        """Expiry: the position leaves at the settlement price like a closing fill without fees
        (cash by quantity x multiplier x price; realized P&L against the average cost)."""
        account = self.accounts[e.account]
        held = account.positions[e.symbol]
        rate, size = self.rates.get(e.symbol, 1.0), e.quantity * held.multiplier
        account.cash += size * e.settlement_price * rate
        realized = held.realized + size * (e.settlement_price * rate - held.avg_price * held.fx)
        left = held.quantity - e.quantity
        account.positions[e.symbol] = replace(
            held,
            quantity=left,
            realized=realized,
            **({} if left else {"avg_price": 0.0, "fx": 1.0}),
        )
        self.marks[e.symbol] = e.settlement_price

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.finished = True

    # --- queries ----------------------------------------------------------------------------

    def working(self, account: str, symbol: str | None = None) -> list[Order]:
        """Open orders not being cancelled."""
        if symbol is not None:
            return list(self._working.get((account, symbol), {}).values())
        return [o for (a, _), orders in self._working.items() if a == account
                for o in orders.values()]  # fmt: skip

    def pending_quantity(self, account: str, symbol: str) -> float:
        """Signed quantity still to fill on the working orders of ``symbol``."""
        return sum(o.signed_remaining for o in self._working.get((account, symbol), {}).values())

    # --- snapshots --------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything, as JSON, such that ``from_state(to_state())`` equals this book."""
        return {
            "config": self.config,
            "accounts": [
                {
                    "name": a.name,
                    "initial": a.initial,
                    "cash": a.cash,
                    "limits": a.limits,
                    "positions": [_position_state(p) for p in a.positions.values()],
                    "fees": a.fees,
                    "slippage": a.slippage,
                    "state": a.state.value,
                    "state_reason": a.state_reason,
                    "peak": a.peak,
                    "equity": a.equity,
                    "stopped": a.stopped,
                    "shadow": a.shadow,
                }
                for a in self.accounts.values()
            ],
            "orders": [o.to_payload() for o in self.orders.values()],
            "submitted_step": self.submitted_step,
            "cancelling": sorted(self.cancelling),
            "marks": self.marks,
            "last_bar": self.last_bar,
            "step": self.step,
            "pending_commands": {str(k): c.to_payload() for k, c in self.pending_commands.items()},
            "applied_commands": sorted(self.applied_commands),
            "schedules": {p: s.to_state() for p, s in self.schedules.items()},
            "orders_this_bar": self.orders_this_bar,
            "finished": self.finished,
            "events": self.events,
            "reconcile_baseline": self.reconcile_baseline,
            **self._currency_state(),
        }

    def _currency_state(self) -> dict[str, Any]:
        """The base currency and FX marks; a one-currency USD book has none to keep (its
        snapshot stays as it was)."""
        if self.base_currency == "USD" and not self.fx and not self.currencies:
            return {}
        return {"base_currency": self.base_currency, "fx": self.fx,
                "currencies": self.currencies}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Book:
        book = cls()
        book.config = state["config"]
        for a in state["accounts"]:
            positions = {p["symbol"]: Position(**p) for p in a["positions"]}
            book.accounts[a["name"]] = Account(
                a["name"],
                a["initial"],
                a["cash"],
                a["limits"],
                positions,
                a["fees"],
                a["slippage"],
                TradingState(a["state"]),
                a["state_reason"],
                a["peak"],
                a["equity"],
                dict(a["stopped"]),
                a.get("shadow", False),
            )
        book.cancelling = set(state["cancelling"])
        for payload in state["orders"]:
            order = Order.from_payload(payload)
            book.orders[order.client_id] = order
            book._track(order)
        book.submitted_step = dict(state["submitted_step"])
        book.marks = dict(state["marks"])
        book.last_bar, book.step = state["last_bar"], state["step"]
        book.pending_commands = {
            int(k): ev.Command.from_payload(v, seq=int(k))
            for k, v in state["pending_commands"].items()
        }
        book.applied_commands = set(state["applied_commands"])
        book.schedules = {p: Schedule.from_state(s) for p, s in state["schedules"].items()}
        book.orders_this_bar = dict(state["orders_this_bar"])
        book.finished, book.events = state["finished"], state["events"]
        book.reconcile_baseline = state.get("reconcile_baseline")  # older snapshots: none
        book.base_currency = state.get("base_currency", "USD")
        book.fx, book.currencies = dict(state.get("fx", {})), dict(state.get("currencies", {}))
        book.rates = {s: book.fx[c] for s, c in book.currencies.items() if c in book.fx}
        return book


def _position_state(position: Position) -> dict[str, Any]:
    """A position as a snapshot keeps it (``fx`` only when it is not 1.0: a position in the
    base currency is kept as it always was)."""
    state = asdict(position)
    if state["fx"] == 1.0:
        del state["fx"]
    return state


def rebuild(journal: Journal, from_snapshot: bool = True) -> Book:
    """The book as the journal says it is: the latest snapshot plus the events after it."""
    snapshot = journal.latest_snapshot() if from_snapshot else None
    book = Book.from_state(snapshot[1]) if snapshot else Book()
    return book.apply_all(journal.read(snapshot[0] if snapshot else 0))
