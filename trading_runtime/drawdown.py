"""Drawdown protection: REDUCING at one drawdown, HALTED at a deeper one. An automatic REDUCING
lifts once the drawdown is back under its level, or once the account is flat (the loss is
taken: the peak restarts from there); a halt needs `resume`."""

from __future__ import annotations

from trading_runtime import events as ev
from trading_runtime.book import Account, Book, TradingState
from trading_runtime.commands import risk_state


def drawdown_change(book: Book, account: Account) -> ev.Event | None:
    """The risk-state event ``account``'s drawdown calls for now, if any."""
    if account.state == TradingState.HALTED:
        return None
    halt = account.limits.get("halt_drawdown")
    reduce = account.limits.get("reducing_drawdown")
    dd, state = account.drawdown, account.state
    if halt is not None and dd >= halt:
        new, why = TradingState.HALTED, f"reached the halt level {halt:.0%}"
    elif state == TradingState.ACTIVE and reduce is not None and dd >= reduce:
        new, why = TradingState.REDUCING, f"reached the reducing level {reduce:.0%}"
    elif state == TradingState.REDUCING and account.state_reason.startswith("drawdown"):
        if reduce is None or dd < reduce:
            new, why = TradingState.ACTIVE, "is back under the reducing level"
        elif _flat(book, account):  # de-risked: the loss is taken, trade from here
            new, why = TradingState.ACTIVE, "taken: flat again, the peak restarts here"
        else:
            return None
    else:
        return None
    reason = f"drawdown {dd:.1%} from the peak {account.peak:,.2f} {why}"
    key = f"{account.name}:{book.step}"
    reset = new == TradingState.ACTIVE and dd >= (reduce or 1.0)
    return risk_state(account.name, new, reason, "risk", key, reset)


def _flat(book: Book, account: Account) -> bool:
    return not book.working(account.name) and not any(
        p.quantity for p in account.positions.values()
    )
