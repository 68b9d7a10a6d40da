"""Operators' overrides - halt, resume, limit changes - as events: who asked, why, and what it
did. The engine applies a command through these events; when no engine runs, the CLI applies it
itself (holding the stream's lock), and the venue hears of the cancels at the next start.

A command is checked before it is journaled (:func:`operator_command`, :func:`check_command`), and
checked again when it applies: one already in a journal that cannot apply (written by an older
QTIS, or by hand) becomes a ``command_applied`` event carrying its error, never an exception in
the engine - the commands after it, a halt, must still apply."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from core.errors import InputError
from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState
from trading_runtime.settings import RiskLimits

# RiskLimits' fields and constraints, without the environment a settings class reads: what a
# limits command may set
_LIMIT_CHANGES = create_model(
    "LimitChanges",
    __config__=ConfigDict(extra="forbid"),
    **{name: (f.annotation, f) for name, f in RiskLimits.model_fields.items()},
)


class CommandRefused(InputError, ValueError):
    """A command that cannot apply; the message says what to change."""


def operator_command(
    command: str, actor: str, reason: str, account: str | None = None, limits: dict | None = None
) -> ev.Command:
    """The operator's command, checked (limits typed as the risk engine reads them), ready to
    be journaled once :func:`check_command` accepts it for its stream."""
    if command not in ev.COMMANDS:
        raise CommandRefused(f"unknown command {command!r}: one of {', '.join(ev.COMMANDS)}")
    if not reason.strip():
        raise CommandRefused("a manual override needs a reason (--reason)")
    if limits and command != "limits":
        raise CommandRefused(f"{command} takes no limits (use the limits command)")
    typed = checked_limits(limits) if command == "limits" else {}
    return ev.Command(command, actor, reason, account, typed)


def check_command(command: ev.Command, accounts: Collection[str]) -> dict[str, Any]:
    """The limits ``command`` sets (typed), or CommandRefused: why it cannot apply to a stream
    whose sub-accounts are ``accounts``."""
    if command.command not in ev.COMMANDS:
        raise CommandRefused(
            f"unknown command {command.command!r}: one of {', '.join(ev.COMMANDS)}"
        )
    wanted = command.account
    if wanted is not None and (not isinstance(wanted, str) or wanted not in accounts):
        raise CommandRefused(f"no sub-account {wanted!r} (have {', '.join(accounts)})")
    return checked_limits(command.limits) if command.command == "limits" else {}


def checked_limits(limits: Any) -> dict[str, Any]:
    """``limits`` typed as the risk engine reads them (a number, not the text "2e5"), or
    CommandRefused naming the limit that is wrong."""
    if not isinstance(limits, dict) or not limits:
        raise CommandRefused("a limits command needs at least one NAME=VALUE (--set)")
    known = RiskLimits.model_fields
    for name, value in limits.items():
        if name not in known:
            raise CommandRefused(f"unknown limit {name!r}: one of {', '.join(known)}")
        if isinstance(value, bool) and known[name].annotation is not bool:
            raise CommandRefused(f"limit {name}={value!r} refused: it takes a number (or none)")
    try:
        typed = _LIMIT_CHANGES.model_validate(limits)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = error["loc"][0]
        raise CommandRefused(f"limit {name}={limits[name]!r} refused: {error['msg']}") from None
    return {name: getattr(typed, name) for name in limits}


def command_events(book: Book, seq: int, command: ev.Command) -> list[ev.Event]:
    """What applying ``command`` (journal seq ``seq``) to ``book`` means, as events: its
    ``command_applied`` first, with the error when it cannot apply (and then nothing else)."""
    name, actor, reason = command.command, command.actor, command.reason
    wanted = command.account
    error, limits = None, {}
    try:
        limits = check_command(command, book.accounts)
    except CommandRefused as exc:
        error = str(exc)
    applied = ev.CommandApplied(
        seq, name, actor, reason, wanted, command.limits, error, key=f"command:{seq}"
    )
    if error is not None:
        return [applied]
    out: list[ev.Event] = [applied]
    for account in [wanted] if wanted else list(book.accounts):
        key = f"{seq}:{account}"
        if name == "halt":
            why = f"halted by {actor}: {reason}"
            out.append(risk_state(account, TradingState.HALTED, why, actor, f"manual:{key}"))
            for order in book.working(account):
                out.append(cancel_request(order.client_id, f"kill switch: {reason}", actor))
        elif name == "resume":
            why = f"resumed by {actor}: {reason}"
            out.append(risk_state(account, TradingState.ACTIVE, why, actor, f"manual:{key}", True))
        else:
            out.append(ev.LimitsChanged(account, limits, actor, reason, key=f"limits:{key}"))
    return out


def risk_state(
    account: str, state: TradingState, reason: str, actor: str, key: str, reset_peak: bool = False
) -> ev.RiskStateChanged:
    return ev.RiskStateChanged(account, state.value, reason, actor, reset_peak, key=f"risk:{key}")


def cancel_request(client_id: str, reason: str, actor: str) -> ev.CancelRequested:
    return ev.CancelRequested(client_id, reason, actor, key=f"{ev.CANCEL_REQUESTED}:{client_id}")
