"""``qtis trade audit``: every order of a stream with what it was decided on, the risk checks it
met, how it ended and its fills, read from the journal and nothing else.

An order's decision is the one journaled with it (a TWAP/VWAP slice's is its parent schedule's);
its risk entry gives the verdict and the account's state and limits in force when it was checked;
``seq`` and ``event_hash`` point at the journal event that decided it, so an auditor can check
an exported row against the hash chain. The chain is verified while reading: a broken journal
is refused, not exported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.journal import Journal
from warehouse.event_chain import ChainCheck


class BrokenJournal(ValueError):
    """The stream's hash chain is broken: its events are not what was written."""


@dataclass(frozen=True)
class RiskCheck:
    """The pre-trade verdict: ``passed``, or ``denied`` by ``check`` for ``reason``; the
    account's trading state and its limits (those set) when the order was checked."""

    result: str
    check: str | None
    reason: str | None
    state: str
    limits: dict[str, Any]


@dataclass
class OrderAudit:
    client_id: str
    account: str
    symbol: str
    side: str
    quantity: float
    type: str
    tag: str
    parent_id: str | None
    decided_at: str | None  # the bar it was decided on
    price: float | None  # the last price when it was decided (None: denied)
    decision: ev.Decision | None
    decision_of: str | None  # whose decision it is: the order's own, or its parent schedule's
    risk: RiskCheck
    seq: int  # the journal event that decided it
    event_hash: str
    status: str = ""
    status_reason: str | None = None
    fills: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The order, its decision, the model behind it, the risk verdict, its fills and its
        place in the journal."""
        out = asdict(self)
        decision = out.pop("decision")
        model = decision.pop("model") if decision else None
        journal = {"seq": out.pop("seq"), "event_hash": out.pop("event_hash")}
        fills, risk = out.pop("fills"), out.pop("risk")
        return out | {"decision": decision, "model": model, "risk": risk, "fills": fills,
                      "journal": journal}  # fmt: skip

    def to_row(self) -> dict[str, Any]:
        """One flat CSV row (:data:`COLUMNS`): the decision and the model spelt out, the fills
        summed (their ids joined by ``;``), the limits as JSON."""
        d = self.decision
        m = d.model if d else None
        filled = sum(f["quantity"] for f in self.fills)
        paid = sum(f["quantity"] * f["price"] for f in self.fills)
        order = {k: getattr(self, k) for k in ORDER_COLUMNS}
        decision = {k: getattr(d, k) if d else None for k in DECISION_COLUMNS}
        model = {k: getattr(m, k) if m else None for k in MODEL_COLUMNS}
        return order | decision | {"model": model.pop("name")} | model | {
            "risk_result": self.risk.result, "risk_check": self.risk.check,
            "risk_reason": self.risk.reason, "account_state": self.risk.state,
            "limits": json.dumps(self.risk.limits, sort_keys=True),
            "fills": len(self.fills), "filled_quantity": filled,
            "avg_fill_price": paid / filled if filled else None,
            "fees": sum(f["fee"] for f in self.fills),
            "fill_ids": ";".join(f["fill_id"] for f in self.fills),
            "seq": self.seq, "event_hash": self.event_hash,
        }  # fmt: skip


ORDER_COLUMNS = (
    "client_id", "account", "symbol", "side", "quantity", "type", "tag", "parent_id",
    "decided_at", "price", "status", "status_reason", "decision_of",
)  # fmt: skip
DECISION_COLUMNS = ("signal", "strength", "target", "position", "forecast", "horizon")
MODEL_COLUMNS = ("name", "version", "role", "run_id", "artifact_sha256")
COLUMNS = (
    *ORDER_COLUMNS, *DECISION_COLUMNS, "model", *MODEL_COLUMNS[1:], "risk_result",
    "risk_check", "risk_reason", "account_state", "limits", "fills", "filled_quantity",
    "avg_fill_price", "fees", "fill_ids", "seq", "event_hash",
)  # fmt: skip


def _risk(event: ev.OrderSubmitted | ev.OrderDenied, book: Book) -> RiskCheck:
    """The verdict on ``event``'s order, with its account as the check saw it."""
    account = book.accounts[event.order.account]
    limits = {k: v for k, v in account.limits.items() if v is not None}
    if isinstance(event, ev.OrderDenied):
        return RiskCheck("denied", event.check, event.reason, account.state.value, limits)
    return RiskCheck("passed", None, None, account.state.value, limits)


def _order(event, book: Book, parents: dict[str, ev.Decision], digest: bytes) -> OrderAudit:
    order = event.order
    decision, decision_of = event.decision, order.client_id if event.decision else None
    if decision is None and order.parent_id in parents:
        decision, decision_of = parents[order.parent_id], order.parent_id
    return OrderAudit(
        order.client_id, order.account, order.symbol, order.side.value, order.quantity,
        order.type.value, order.tag, order.parent_id,
        order.created.isoformat() if order.created else None,
        getattr(event, "price", None), decision, decision_of, _risk(event, book), event.seq,
        digest.hex(),
    )  # fmt: skip


def audit_trail(journal: Journal) -> list[OrderAudit]:
    """Every order of ``journal``'s stream in the order it was decided. Raises BrokenJournal
    when the hash chain is broken (`qtis trade replay` names the link)."""
    check, book = ChainCheck(journal.stream), Book()
    orders: dict[str, OrderAudit] = {}
    parents: dict[str, ev.Decision] = {}
    for row in journal.links():
        if not check.add(row.seq, row.type, row.key, row.payload, row.prev_hash, row.hash):
            raise BrokenJournal(f"{check.broken}; nothing exported (see `qtis trade replay`)")
        event = row.event()
        if isinstance(event, ev.ScheduleStarted) and event.decision is not None:
            parents[event.parent_id] = event.decision
        elif isinstance(event, ev.OrderSubmitted | ev.OrderDenied):
            orders[event.order.client_id] = _order(event, book, parents, row.hash)
        elif isinstance(event, ev.OrderFilled):
            fill = event.fill.to_payload()
            orders[fill["client_id"]].fills.append(
                {k: fill[k] for k in ("fill_id", "ts", "quantity", "price", "fee", "reference")}
            )
        book.apply(event)
    for audit in orders.values():
        final = book.orders[audit.client_id]
        audit.status, audit.status_reason = final.status.value, final.reason
    return list(orders.values())
