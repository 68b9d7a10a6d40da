"""Operators' overrides - halt, resume, limit changes - as events: who asked, why, and what it
did. The engine applies a command through these events; when no engine runs, the CLI applies it
itself (holding the stream's lock), and the venue hears of the cancels at the next start."""

from __future__ import annotations

from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState
from trading_runtime.settings import RiskLimits


def operator_command(
    command: str, actor: str, reason: str, account: str | None = None, limits: dict | None = None
) -> ev.Command:
    """The operator's command, checked, ready to be journaled."""
    if command not in ev.COMMANDS:
        raise ValueError(f"unknown command {command!r}: one of {', '.join(ev.COMMANDS)}")
    if not reason.strip():
        raise ValueError("a manual override needs a reason (--reason)")
    return ev.Command(command, actor, reason, account, limits or {})


def command_events(book: Book, seq: int, command: ev.Command) -> list[ev.Event]:
    """What applying ``command`` (journal seq ``seq``) to ``book`` means, as events."""
    name, actor, reason = command.command, command.actor, command.reason
    wanted = command.account
    error = None
    if wanted is not None and wanted not in book.accounts:
        error = f"no sub-account {wanted!r} (have {', '.join(book.accounts)})"
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
            merged = {**book.accounts[account].limits, **command.limits}
            RiskLimits(**merged)  # refuse a bad value before it is journaled
            out.append(
                ev.LimitsChanged(account, command.limits, actor, reason, key=f"limits:{key}")
            )
    return out


def risk_state(
    account: str, state: TradingState, reason: str, actor: str, key: str, reset_peak: bool = False
) -> ev.RiskStateChanged:
    return ev.RiskStateChanged(account, state.value, reason, actor, reset_peak, key=f"risk:{key}")


def cancel_request(client_id: str, reason: str, actor: str) -> ev.CancelRequested:
    return ev.CancelRequested(client_id, reason, actor, key=f"{ev.CANCEL_REQUESTED}:{client_id}")
