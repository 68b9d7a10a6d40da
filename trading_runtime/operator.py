"""The operator's overrides of a stream - halt, resume, limits - applied from outside the engine.

The command is checked against the stream (its sub-accounts, the limits' names and values)
before it is journaled with who and why: a bad one leaves the journal untouched. When no engine
holds the stream, it is applied here (holding the stream's lock) and the venue hears of the
cancels at the next start; otherwise the running engine applies it and this waits for its
``command_applied`` event."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable

from trading_runtime import events as ev
from trading_runtime.commands import check_command, command_events, operator_command
from trading_runtime.engine import rebuild
from trading_runtime.journal import Journal

WAIT_SECONDS = 30  # for a running engine to apply a command
MAX_EFFECTS = 200  # events read back after the engine applied it


def send_command(
    url: str,
    stream: str,
    command: str,
    reason: str,
    account: str | None = None,
    actor: str | None = None,
    limits: dict | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> list[ev.Event]:
    """Journal ``command`` and return its effects, starting with its ``command_applied`` event
    (which carries an ``error`` when the command could not apply). ``actor`` defaults to the OS
    user; ``on_wait(seq)`` hears that a running engine has the command to apply.

    Raises CommandRefused, a ValueError (a bad command, account or limits: nothing journaled),
    LookupError (no such stream), TimeoutError (the engine did not apply it in time)."""
    order = operator_command(command, actor or getpass.getuser(), reason, account, limits)
    journal = Journal(url, stream)
    try:
        if not journal.exists():
            raise LookupError(f"no stream {stream!r}")
        idle = journal.acquire()  # True: no engine runs, apply it here
        book = rebuild(journal)
        check_command(order, book.accounts)
        seq = journal.append_command(order)
        if idle:
            effects = command_events(book, seq, order)
            journal.write(effects)
            return effects
        if on_wait is not None:
            on_wait(seq)
        return _applied(journal, seq)
    finally:
        journal.close()


def _applied(journal: Journal, seq: int) -> list[ev.Event]:
    """The events from the engine's ``command_applied`` for command ``seq`` on."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        applied = [
            e for e in journal.read(after=seq, types=[ev.COMMAND_APPLIED]) if e.command_seq == seq
        ]
        if applied:
            return list(journal.read(after=applied[0].seq - 1))[:MAX_EFFECTS]
        time.sleep(0.2)
    raise TimeoutError(
        f"the engine holds the stream but did not apply the command within {WAIT_SECONDS} s"
    )
