"""``qtis trade replay``: the journal checked against itself. Its hash chain must be unbroken
(no event edited, removed or reordered since it was appended), a state rebuilt from nothing must
equal the one rebuilt from the latest snapshot, every bar's journaled equity must be what the
events before it imply, every fill must belong to an order it does not overfill, and cash must
equal the starting capital less what the fills paid."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.journal import Journal
from warehouse.event_chain import ChainCheck


@dataclass
class Verification:
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def verify_chain(journal: Journal) -> ChainCheck:
    """The stream's hash chain walked to its end, or to its first broken link."""
    check = ChainCheck(journal.stream)
    for row in journal.links():
        if not check.add(row.seq, row.type, row.key, row.payload, row.prev_hash, row.hash):
            break
    return check


def verify(journal: Journal) -> Verification:
    out = Verification()
    chain = verify_chain(journal)
    if chain.broken is not None:
        out.problems.append(chain.broken)
    else:
        out.checks.append(
            f"hash chain of {chain.events:,} events unbroken; head {chain.head.hex()}"
        )
    book = Book()
    submitted: dict[str, int] = {}
    filled: dict[str, float] = {}
    paid: dict[str, float] = {}
    bars = 0
    for event in journal.read():
        if isinstance(event, ev.OrderSubmitted):
            cid = event.order.client_id
            submitted[cid] = submitted.get(cid, 0) + 1
        elif isinstance(event, ev.OrderFilled):
            f = event.fill
            if f.client_id not in book.orders:
                out.problems.append(f"fill {f.fill_id} of an unknown order")
                continue
            filled[f.client_id] = filled.get(f.client_id, 0.0) + f.quantity
            side = 1 if f.side == "buy" else -1
            cost = (side * f.quantity * f.price * f.multiplier + f.fee) * f.fx_rate  # in base
            paid[f.account] = paid.get(f.account, 0.0) + cost
        book.apply(event)
        if isinstance(event, ev.BarClosed):
            bars += 1
            for name, value in (event.equity or {}).items():
                if not math.isclose(book.accounts[name].equity, value, rel_tol=1e-9, abs_tol=1e-4):
                    out.problems.append(
                        f"bar {event.ts}: journaled equity of {name} {value:,.2f}, events give"
                        f" {book.accounts[name].equity:,.2f}"
                    )
    twice = [c for c, n in submitted.items() if n > 1]
    if twice:
        out.problems.append(f"{len(twice)} orders submitted more than once, e.g. {twice[0]}")
    out.checks.append(
        f"{book.events:,} events, {bars:,} bars, {len(submitted):,} orders sent once each"
    )
    over = [c for c, q in filled.items() if q > book.orders[c].quantity + 1e-9]
    if over:
        out.problems.append(f"{len(over)} orders filled beyond their quantity, e.g. {over[0]}")
    out.checks.append(f"{sum(1 for _ in filled):,} filled orders, none beyond its quantity")
    for name, account in book.accounts.items():
        expected = account.initial - paid.get(name, 0.0)
        if not math.isclose(account.cash, expected, rel_tol=1e-9, abs_tol=1e-4):
            out.problems.append(f"{name}: cash {account.cash:,.2f}, fills imply {expected:,.2f}")
        else:
            out.checks.append(f"{name}: cash {account.cash:,.2f} = capital - fills - fees")
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        restored = Book.from_state(snapshot[1]).apply_all(journal.read(snapshot[0]))
        if restored.to_state() == book.to_state():
            out.checks.append(f"snapshot at seq {snapshot[0]:,} + later events = full replay")
        else:
            out.problems.append(f"snapshot at seq {snapshot[0]:,} + later events != full replay")
    out.checks.append(f"equity journaled with each of the {bars:,} bars matches the replay")
    return out
