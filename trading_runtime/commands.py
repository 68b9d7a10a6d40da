"""Operators' overrides - halt, resume, limit changes - as events: who asked, why, and what it
did. The engine applies a command through these events; when no engine runs, the CLI applies it
itself (holding the stream's lock), and the venue hears of the cancels at the next start."""

from __future__ import annotations

from typing import Any

from trading_runtime import events as ev
from trading_runtime.book import Book, TradingState
from trading_runtime.settings import RiskLimits


def command_payload(
    command: str, actor: str, reason: str, account: str | None = None, limits: dict | None = None
) -> dict[str, Any]:
    if command not in ev.COMMANDS:
        raise ValueError(f"unknown command {command!r}: one of {', '.join(ev.COMMANDS)}")
    if not reason.strip():
        raise ValueError("a manual override needs a reason (--reason)")
    return {
        "command": command,
        "actor": actor,
        "reason": reason,
        "account": account,
        "limits": limits or {},
    }


def command_events(book: Book, seq: int, command: dict[str, Any]) -> list[ev.Event]:
    """What applying ``command`` (journal seq ``seq``) to ``book`` means, as events."""
    name, actor, reason = command["command"], command["actor"], command["reason"]
    out = [ev.Event(ev.COMMAND_APPLIED, {"command_seq": seq, **command}, f"command:{seq}")]
    wanted = command.get("account")
    if wanted is not None and wanted not in book.accounts:
        out[0].payload["error"] = f"no sub-account {wanted!r} (have {', '.join(book.accounts)})"
        return out
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
            merged = {**book.accounts[account].limits, **command["limits"]}
            RiskLimits(**merged)  # refuse a bad value before it is journaled
            out.append(
                ev.Event(
                    ev.LIMITS_CHANGED,
                    {
                        "account": account,
                        "limits": command["limits"],
                        "actor": actor,
                        "reason": reason,
                    },
                    f"limits:{key}",
                )
            )
    return out


def risk_state(
    account: str, state: TradingState, reason: str, actor: str, key: str, reset_peak: bool = False
) -> ev.Event:
    return ev.Event(
        ev.RISK_STATE_CHANGED,
        {
            "account": account,
            "state": state.value,
            "reason": reason,
            "actor": actor,
            "reset_peak": reset_peak,
        },
        f"risk:{key}",
    )


def cancel_request(client_id: str, reason: str, actor: str) -> ev.Event:
    return ev.Event(
        ev.CANCEL_REQUESTED,
        {"client_id": client_id, "reason": reason, "actor": actor},
        f"{ev.CANCEL_REQUESTED}:{client_id}",
    )
