"""One round against a hostile venue. Orders go out; the venue fills them in parts while its
wire drops, duplicates, swaps, truncates, corrupts and prefixes with garbage the messages a plan
names, and it slips in what no honest venue sends (a fill of an order that is not ours, one
without Account, a Latin-1 Text, a SequenceReset down, a ResendRequest of a huge range, a fill
repeated under its ExecID). The gateway may crash once: what it handed out since the last
journal write is lost, and a new gateway restores the open orders. The round's book stands for
the journal: every event is applied to it as the engine applies them. Used by the property test
(tests/trading_runtime/test_fix_safety.py) and by ``python -m bench.fix_fuzz``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.venue import DAY0, ScriptedVenue, bar, latin1
from trading_runtime import events as ev
from trading_runtime.book import Book
from trading_runtime.domain import Order, Side
from trading_runtime.fix.gateway import FixGateway
from trading_runtime.fix.messages import ExecType
from trading_runtime.fix.protocol import MsgType, Tag
from trading_runtime.fix.session import FixSessionError
from trading_runtime.instruments import Instrument
from trading_runtime.settings import FixSettings

EXTRAS = ("unknown_order", "no_account", "latin1", "lower_reset", "huge_resend", "same_exec_id")
ALERTS = {"unknown_order": "unknown_order", "no_account": "missing_account"}  # extra -> alert
INSTRUMENTS = {"X": Instrument("X")}


@dataclass
class Round:
    sent: list[str] = field(default_factory=list)  # fill ids the venue sent (ClOrdID:ExecID)
    applied: list[str] = field(default_factory=list)  # fill ids the book applied, in order
    alerts: list[str] = field(default_factory=list)  # kinds of the journaled alerts
    written: int = 0  # messages the venue wrote
    fuzzed: int = 0  # of them, mangled by the wire
    refused: int = 0  # calls that raised FixSessionError (a Logon the wire mangled)
    crashed: bool = False  # the gateway died before a journal write and was restarted

    @property
    def lost(self) -> list[str]:
        return sorted(set(self.sent) - set(self.applied))

    @property
    def repeated(self) -> list[str]:
        return sorted(f for f, n in Counter(self.applied).items() if n > 1)

    @property
    def foreign(self) -> list[str]:
        """Fills applied that the venue never sent."""
        return sorted(set(self.applied) - set(self.sent))


class Runner:
    """The engine's side of a round: a gateway, a book standing for the journal, and the
    round's tally."""

    def __init__(self, venue: ScriptedVenue, settings: FixSettings, orders: list[Order]) -> None:
        self.venue, self.settings, self.tally = venue, settings, Round()
        self.book = Book().apply_all([ev.RunStarted({}, (ev.AccountSpec("acct", 1e9, {}),))])
        for o in orders:
            self.book.apply(ev.OrderSubmitted(o, 0, 10.0, key=f"submitted:{o.client_id}"))
        self.gateway = FixGateway(INSTRUMENTS, settings)
        self.step = 0

    def take(self, call: Callable[[FixGateway], list[ev.Event]], journal: bool = True) -> None:
        """Apply what ``call`` hands out, and say it is journaled (unless the engine dies)."""
        try:
            events = call(self.gateway)
        except FixSessionError:
            self.tally.refused += 1  # loud: the engine would stop here and be restarted
            return
        if not journal:
            return
        for event in events:
            self.book.apply(event)  # raises if the engine could not apply it
            if event.type == ev.ORDER_FILLED:
                self.tally.applied.append(event.fill.fill_id)
            elif event.type == ev.RISK_ALERT:
                self.tally.alerts.append(event.kind)
        self.gateway.journaled()

    def send(self, orders: list[Order], attempts: int = 20) -> None:
        """Submit ``orders`` until the venue has them all (a Logon the wire mangled refuses
        a call: the engine would be restarted and send them again)."""
        for _ in range(attempts):
            missing = [o for o in orders if o.client_id not in self.venue.orders]
            if not missing:
                return
            self.take(lambda g, missing=missing: g.submit(missing, 0))
        raise AssertionError(f"the venue never got {missing}")

    def bar(self, journal: bool = True) -> None:
        self.step += 1
        self.take(lambda g: g.on_bar(bar(self.step, 10, 10, 10, 10)), journal)

    def crash(self) -> None:
        """The engine dies before journaling this bar's events; a new one restores."""
        self.bar(journal=False)
        self.tally.crashed = True
        self.gateway.session.drop()
        self.gateway.session.store.close()
        self.gateway = FixGateway(INSTRUMENTS, self.settings)
        book = self.book
        self.take(lambda g: g.restore(list(book.open.values()), book.submitted_step))

    def venue_does(self, step: tuple) -> None:
        venue, kind = self.venue, step[0]
        if kind in ("fill", "no_account", "latin1"):
            client_id, qty = (step[1], step[2]) if kind == "fill" else ("x", 1.0)
            drop = [Tag.ACCOUNT] if kind == "no_account" else []
            reason = "LATIN1" if kind == "latin1" else None
            exec_id = venue.report(client_id, ExecType.TRADE, qty=qty, drop=drop, reason=reason)
            self.tally.sent.append(f"{client_id}:{exec_id}")
        elif kind == "unknown_order":
            venue.report("ghost", ExecType.TRADE, qty=1.0)
        elif kind == "lower_reset":
            venue.session.send(MsgType.SEQUENCE_RESET, [(Tag.NEW_SEQ_NO, 1)])
        elif kind == "huge_resend":
            venue.session.send(MsgType.RESEND_REQUEST, [(Tag.BEGIN_SEQ_NO, -(10**12)),
                                                        (Tag.END_SEQ_NO, 0)])  # fmt: skip
        elif kind == "same_exec_id":
            self.venue_does(("fill", "x", 1.0))
            venue.repeat(self.tally.sent[-1].split(":", 1)[1])  # again, as a new message

    def complete(self, extras: Sequence[str]) -> bool:
        wanted = Counter(ALERTS[e] for e in extras if e in ALERTS)
        return not self.tally.lost and not wanted - Counter(self.tally.alerts)


def hostile_round(
    store: Path,
    plan: Sequence[tuple[str, int]],
    partials: Sequence[Sequence[int]],
    extras: Sequence[str],
    crash_after: int | None = None,
    rounds: int = 60,
) -> Round:
    """Orders o0.. (100 each) and x; o<i> is filled in ``partials[i]``, x serves the
    ``extras``. After the script, bars go on until every fill and expected alert is in (at
    most ``rounds``), then one more bar catches a late duplicate."""
    settings = FixSettings(
        store_dir=store / "gateway", heartbeat_seconds=2, answer_timeout=0.5, connect_timeout=2.0
    )
    names = [f"o{i}" for i in range(len(partials))] + ["x"]
    orders = [Order(name, "acct", "X", Side.BUY, 100.0, created=DAY0) for name in names]
    script = [("fill", f"o{i}", float(q)) for i, qs in enumerate(partials) for q in qs]
    script += [(e,) for e in extras]
    with ScriptedVenue(settings, store / "venue", plan) as venue:
        venue.edit = latin1
        runner = Runner(venue, settings.model_copy(update={"port": venue.port}), orders)
        runner.send(orders)
        for i, step in enumerate(script):
            runner.venue_does(step)
            runner.crash() if i == crash_after else runner.bar()
        for _ in range(rounds):
            if runner.complete(extras):
                break
            runner.bar()
        runner.bar()
        runner.gateway.close()
    runner.tally.written, runner.tally.fuzzed = venue.written, venue.fuzzed
    return runner.tally
