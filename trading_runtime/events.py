"""The journal's records, one frozen dataclass per event type. An event is immutable; its type
names what happened and its fields carry everything a projection needs, so state is never
stored anywhere but here.

``to_payload`` gives the JSON the journal stores (the same keys, in the same order, as it always
has: old journals replay) and ``from_payload`` reads it back; ``decode`` picks the class of a
stored row by its type.

``key`` is set on events that must happen exactly once (an order's submission, a fill, the end
of a bar): appending the same key twice is a no-op, which makes a replayed decision harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Self

from trading_runtime.domain import Fill, Order, Side

RUN_STARTED = "run_started"
ORDER_SUBMITTED = "order_submitted"
ORDER_DENIED = "order_denied"
ORDER_ACCEPTED = "order_accepted"
ORDER_REJECTED = "order_rejected"
ORDER_FILLED = "order_filled"
ORDER_CANCELLED = "order_cancelled"
ORDER_EXPIRED = "order_expired"
CANCEL_REQUESTED = "cancel_requested"  # journaled before the venue is asked
ORDER_TRIGGERED = "order_triggered"  # a stop-limit's stop was hit: it now rests as a limit
BAR_CLOSED = "bar_closed"
RISK_STATE_CHANGED = "risk_state_changed"
LIMITS_CHANGED = "limits_changed"
SCHEDULE_STARTED = "schedule_started"
SCHEDULE_ENDED = "schedule_ended"
COMMAND = "command"  # an operator's request (halt, resume, limits), written by the CLI
COMMAND_APPLIED = "command_applied"  # the engine acted on it: its effects follow
STOP_CLEARED = "stop_cleared"  # a stopped-out symbol may be entered again
PORTFOLIO_REBALANCED = "portfolio_rebalanced"  # an optimizer's new target weights
RISK_ALERT = "risk_alert"  # something a risk desk must look at (a correlation breakdown)
RUN_FINISHED = "run_finished"
BAR_LATE = "bar_late"  # live feed: a bar that came after its cross-section, or corrected one
FEED_STATUS = "feed_status"  # live feed: went stale (no trading) or fresh again
RECONCILED = "reconciled"  # the book compared with the broker's positions, cash, open orders
BOOK_CORRECTED = "book_corrected"  # the book adopted the broker's state (reconciliation)
OPTION_SETTLED = "option_settled"  # an option position closed at expiry (trading_runtime.options)

COMMANDS = ("halt", "resume", "limits")

_META = frozenset({"key", "seq", "stored"})


OMIT_NONE = {"omit_none": True}  # field metadata: left out of the payload while None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every record has besides its payload: the exactly-once key, and the sequence number
    and time the journal gave it."""

    type: ClassVar[str]
    decoders: ClassVar[dict[str, Callable[[Any], Any]]] = {}  # payload value -> field value
    key: str | None = None
    seq: int | None = None
    stored: datetime | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON object the journal stores."""
        out: dict[str, Any] = {}
        for name, omit_none in _payload_fields(type(self)):
            value = getattr(self, name)
            if value is None and omit_none:
                continue
            out[name] = _encode(value)
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any], **meta: Any) -> Self:
        """The event of a stored payload (keys it lacks take their defaults)."""
        values = {
            f.name: cls.decoders.get(f.name, _same)(payload[f.name])
            for f in fields(cls)
            if f.name not in _META and f.name in payload
        }
        return cls(**values, **meta)


def _same(value: Any) -> Any:
    return value


@cache
def _payload_fields(cls: type[Event]) -> tuple[tuple[str, bool], ...]:
    """Each payload field's name and whether it is left out while None (once per class: the
    journal encodes every event, and ``dataclasses.fields`` is not cheap)."""
    return tuple(
        (f.name, bool(f.metadata.get("omit_none"))) for f in fields(cls) if f.name not in _META
    )


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # the usual case, by exact type: no isinstance chain
        return value
    if isinstance(value, Order | Fill | AccountSpec | Decision):
        return value.to_payload()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Side):
        return value.value
    return value


_PLAIN = frozenset({str, int, float, bool, type(None), dict, list})


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """A sub-account as a run starts it."""

    name: str
    capital: float
    limits: dict[str, Any]
    shadow: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {"name": self.name, "capital": self.capital, "limits": self.limits,
                "shadow": self.shadow}  # fmt: skip

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> AccountSpec:
        return cls(data["name"], data["capital"], data["limits"], data.get("shadow", False))


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """Which model answered: its registered name and version, the role it answered in, its
    MLflow run, and the digest of its artifacts recorded at registration (None: not recorded)."""

    name: str
    version: str
    role: str
    run_id: str | None = None
    artifact_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Why a strategy traded a symbol, as it stood when it decided: its signal's strength, the
    quantity it aimed for and what it held (with its working orders), and for a model strategy
    the forecast it acted on (a log return over ``horizon`` bars) and the model that gave it.
    ``model`` None: a rule strategy, or a model strategy whose model had no forecast for the
    symbol (its window was not ready)."""

    signal: str
    strength: float
    target: float
    position: float
    forecast: float | None = None
    horizon: int | None = None
    model: ModelLineage | None = None

    def to_payload(self) -> dict[str, Any]:
        model = self.model
        return {
            "signal": self.signal,
            "strength": self.strength,
            "target": self.target,
            "position": self.position,
            "forecast": self.forecast,
            "horizon": self.horizon,
            "model": None if model is None else {f: getattr(model, f) for f in LINEAGE_FIELDS},
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Decision:
        model = data.get("model")
        lineage = ModelLineage(**model) if model is not None else None
        return cls(**{**data, "model": lineage})


LINEAGE_FIELDS = tuple(f.name for f in fields(ModelLineage))
DECISION = {"decision": Decision.from_payload}  # decoders of the events that carry one


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """``base_currency``: what the accounts' cash, P&L and limits are in (None: a journal from
    before it was recorded, all USD)."""

    type: ClassVar[str] = RUN_STARTED
    decoders: ClassVar[dict] = {"accounts": lambda v: tuple(map(AccountSpec.from_payload, v))}
    config: dict[str, Any]
    accounts: tuple[AccountSpec, ...]
    base_currency: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderSubmitted(Event):
    """``decision``: why the strategy sent it (None: a protective stop or a TWAP/VWAP slice,
    whose decision is its parent schedule's)."""

    type: ClassVar[str] = ORDER_SUBMITTED
    decoders: ClassVar[dict] = {"order": Order.from_payload, **DECISION}
    order: Order
    step: int
    price: float | None = None
    decision: Decision | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderDenied(Event):
    type: ClassVar[str] = ORDER_DENIED
    decoders: ClassVar[dict] = {"order": Order.from_payload, **DECISION}
    order: Order
    check: str
    reason: str
    decision: Decision | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderAccepted(Event):
    """The venue took the order; a live order's answer carries how long the bar took."""

    type: ClassVar[str] = ORDER_ACCEPTED
    client_id: str
    tick_to_order_us: float | None = field(default=None, metadata=OMIT_NONE)
    stages_us: dict[str, float] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderRejected(Event):
    type: ClassVar[str] = ORDER_REJECTED
    client_id: str
    reason: str
    tick_to_order_us: float | None = field(default=None, metadata=OMIT_NONE)
    stages_us: dict[str, float] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    type: ClassVar[str] = ORDER_FILLED
    decoders: ClassVar[dict] = {"fill": Fill.from_payload}
    fill: Fill


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    """Confirmed by the venue; ``actor`` is who asked (None: the venue's own, e.g. IOC)."""

    type: ClassVar[str] = ORDER_CANCELLED
    client_id: str
    reason: str
    actor: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class OrderExpired(Event):
    type: ClassVar[str] = ORDER_EXPIRED
    client_id: str
    reason: str = "time in force"


@dataclass(frozen=True, slots=True)
class CancelRequested(Event):
    type: ClassVar[str] = CANCEL_REQUESTED
    client_id: str
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class OrderTriggered(Event):
    type: ClassVar[str] = ORDER_TRIGGERED
    client_id: str


@dataclass(frozen=True, slots=True)
class BarClosed(Event):
    """``equity``: what the projection arrived at, added before the bar is written, so that
    `qtis trade replay` can check that the events still give it. ``fx``: the bar's FX marks,
    base currency per 1 unit of each foreign currency the run trades (None: a one-currency
    run), which positions in those currencies are valued at."""

    type: ClassVar[str] = BAR_CLOSED
    ts: str
    step: int
    marks: dict[str, float]
    equity: dict[str, float] | None = field(default=None, metadata=OMIT_NONE)
    fx: dict[str, float] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class RiskStateChanged(Event):
    type: ClassVar[str] = RISK_STATE_CHANGED
    account: str
    state: str
    reason: str
    actor: str = "risk"
    reset_peak: bool = False


@dataclass(frozen=True, slots=True)
class LimitsChanged(Event):
    type: ClassVar[str] = LIMITS_CHANGED
    account: str
    limits: dict[str, Any]
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleStarted(Event):
    """A TWAP/VWAP parent order: its slices go out one per bar."""

    type: ClassVar[str] = SCHEDULE_STARTED
    decoders: ClassVar[dict] = {"side": Side, **DECISION}
    parent_id: str
    account: str
    symbol: str
    side: Side
    slices: list[float]
    algo: str
    step: int
    decision: Decision | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class ScheduleEnded(Event):
    type: ClassVar[str] = SCHEDULE_ENDED
    parent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Command(Event):
    type: ClassVar[str] = COMMAND
    command: str
    actor: str
    reason: str
    account: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandApplied(Event):
    """The command (journal seq ``command_seq``) as the engine applied it; ``error`` says why
    it did nothing."""

    type: ClassVar[str] = COMMAND_APPLIED
    command_seq: int
    command: str
    actor: str
    reason: str
    account: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    error: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class StopCleared(Event):
    type: ClassVar[str] = STOP_CLEARED
    account: str
    symbol: str


@dataclass(frozen=True, slots=True)
class PortfolioRebalanced(Event):
    """An optimizer's solve (``portfolio.sizer.Rebalance``), for reports."""

    type: ClassVar[str] = PORTFOLIO_REBALANCED
    account: str
    step: int
    ts: str
    method: str
    weights: dict[str, float]
    turnover: float
    confidence: float | None
    solve_ms: float
    correlation: float | None = None
    correlation_change: float | None = None
    correlation_alert: str | None = None


@dataclass(frozen=True, slots=True)
class RiskAlert(Event):
    type: ClassVar[str] = RISK_ALERT
    account: str
    ts: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class BarLate(Event):
    """A bar the live feed could not hand over with its cross-section: ``kind`` "late" (it came
    after the cross-section went out without it) or "corrected" (its values changed after it
    was traded). It is recorded, never traded on."""

    type: ClassVar[str] = BAR_LATE
    symbol: str
    ts: str
    kind: str
    step: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class FeedStatus(Event):
    """The live feed went ``stale`` (nothing traded until it is ``fresh`` again), or recovered."""

    type: ClassVar[str] = FEED_STATUS
    state: str
    reason: str
    last_bar: str | None


@dataclass(frozen=True, slots=True)
class Reconciled(Event):
    """The book compared with the broker: ``trigger`` (start, reconnect, periodic), each
    difference found, and what the policy did about them (none, adopted, halted)."""

    type: ClassVar[str] = RECONCILED
    trigger: str
    matched: bool
    differences: tuple[dict[str, Any], ...]
    action: str
    broker: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BookCorrected(Event):
    """The book takes the broker's word for one account's ``symbol`` (quantity at ``price``)
    or, with ``symbol`` None, its cash: a reconciliation adopting the broker's state."""

    type: ClassVar[str] = BOOK_CORRECTED
    account: str
    symbol: str | None
    quantity_before: float
    quantity_after: float
    price: float | None
    cash_delta: float
    reason: str


@dataclass(frozen=True, slots=True)
class OptionSettled(Event):
    """An account's ``quantity`` of ``symbol`` settled in cash at expiry: ``settlement_price``
    per unit of the underlying (the exercise value at ``underlying_price``, 0 unexercised)."""

    type: ClassVar[str] = OPTION_SETTLED
    account: str
    symbol: str
    quantity: float
    underlying_price: float
    settlement_price: float
    exercised: bool
    ts: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    type: ClassVar[str] = RUN_FINISHED


TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted, OrderSubmitted, OrderDenied, OrderAccepted, OrderRejected, OrderFilled,
        OrderCancelled, OrderExpired, CancelRequested, OrderTriggered, BarClosed,
        RiskStateChanged, LimitsChanged, ScheduleStarted, ScheduleEnded, Command,
        CommandApplied, StopCleared, PortfolioRebalanced, RiskAlert, RunFinished, BarLate,
        FeedStatus, Reconciled, BookCorrected, OptionSettled,
    )
}  # fmt: skip


def decode(
    type_: str,
    payload: dict[str, Any],
    key: str | None = None,
    seq: int | None = None,
    stored: datetime | None = None,
) -> Event:
    """The event of a journal row."""
    cls = TYPES.get(type_)
    if cls is None:
        raise ValueError(f"unknown event type {type_!r} (seq {seq})")
    return cls.from_payload(payload, key=key, seq=seq, stored=stored)


def stamp(ts: datetime) -> str:
    """The compact form of a bar time used in client order ids and event keys."""
    return ts.strftime("%Y%m%dT%H%M%S")
