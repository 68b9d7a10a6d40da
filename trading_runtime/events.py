"""The journal's records. An event is immutable; its type names what happened and its payload
carries everything a projection needs, so state is never stored anywhere but here.

``key`` is set on events that must happen exactly once (an order's submission, a fill, the end
of a bar): appending the same key twice is a no-op, which makes a replayed decision harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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

COMMANDS = ("halt", "resume", "limits")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    payload: dict[str, Any]
    key: str | None = None
    seq: int | None = None  # given by the journal
    ts: datetime | None = None  # when the journal stored it


def stamp(ts: datetime) -> str:
    """The compact form of a bar time used in client order ids and event keys."""
    return ts.strftime("%Y%m%dT%H%M%S")
