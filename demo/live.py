"""The demo's live session: the local stand-in market (Alpaca's protocols) streams new bars, the
trading service (`qtis trade live`, a real process) trades the champion through the Alpaca
adapter, and the demo kills it with SIGKILL mid-session and starts it again, as a supervisor
would. The summary shows what the journal and the broker say afterwards."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from rich.console import Console

from serving.errors import NoChampion
from serving.settings import ServingSettings
from trading_runtime import events as ev
from trading_runtime.alpaca.rehearsal import Rehearsal
from trading_runtime.instruments import load_instruments
from trading_runtime.journal import Journal
from trading_runtime.runs import model_client
from training.settings import TrackingSettings
from warehouse.db import connect
from warehouse.settings import WarehouseSettings

LIVE_BARS = 16  # new sessions the stand-in streams
KILL_AFTER = 7  # bars traded before the SIGKILL


def show_live(console: Console, url: str, settings: WarehouseSettings, tracking: TrackingSettings):
    """Run the rehearsed live session and print its summary; returns its stream."""
    stream = f"demo-live-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        model_client(url, None, ServingSettings(), tracking)
        signal = ["--signal", "model"]
    except NoChampion:
        signal = ["--signal", "sma-cross", "--fast", "3", "--slow", "8"]
    symbols = sorted(load_instruments(url, None))
    args = ["--feed", "alpaca", "--broker", "alpaca", *signal, "--symbols", ",".join(symbols)]
    env = {"QTIS_LIVE_HEALTH_PORT": "0", "QTIS_LIVE_RECONCILE_MINUTES": "0.05"}
    rehearsal = Rehearsal(url, symbols, LIVE_BARS, stream, args, settings.home, env=env)
    with (
        rehearsal,
        console.status(
            f"live session {stream}: the stand-in market streams {LIVE_BARS} new bars over Alpaca's"
            " data WebSocket, the service trades them through Alpaca's trading API"
        ),
    ):
        rehearsal.start()
        for _ in range(KILL_AFTER):
            rehearsal.advance()
        rehearsal.kill()
        killed = time.monotonic()
        rehearsal.start()
        rehearsal.advance()
        back = time.monotonic() - killed
        for _ in range(LIVE_BARS - KILL_AFTER - 1):
            rehearsal.advance()
        code = rehearsal.stop()
        latency = np.array(list(rehearsal.bar_to_order().values())) * 1e3
        at_broker = rehearsal.broker_orders()
    _print_live(console, url, stream, rehearsal, back, code, latency, at_broker)
    removed = _forget_new_bars(url, rehearsal.times[0])
    console.print(
        f"  the stand-in's {removed} bars removed from market.bars again: the bundled sample"
        " stays as it was for the next run (the journal keeps the session)"
    )
    return stream


def _forget_new_bars(url: str, first: datetime) -> int:
    """The bars the stand-in streamed (synthetic continuations) out of the warehouse."""
    with connect(url) as conn, conn.transaction():
        return conn.execute(
            "delete from market.bars where source = 'alpaca' and ts >= %s", (first,)
        ).rowcount


def _print_live(console, url, stream, rehearsal, back, code, latency, at_broker) -> None:
    counts: dict[str, int] = {}
    reconciled: list[ev.Reconciled] = []
    sent: set[str] = set()
    journal = Journal(url, stream)
    try:
        for event in journal.read():
            counts[event.type] = counts.get(event.type, 0) + 1
            if isinstance(event, ev.Reconciled):
                reconciled.append(event)
            elif isinstance(event, ev.OrderSubmitted):
                sent.add(event.order.client_id)
    finally:
        journal.close()
    submitted = counts.get(ev.ORDER_SUBMITTED, 0)
    same = "the journal's, each once" if set(at_broker) == sent else "[red]not the journal's[/]"
    console.print(
        f"[bold]Live[/] stream {stream} (the champion through the Alpaca adapter, against the"
        f" local stand-in market): {counts.get(ev.BAR_CLOSED, 0)} bars received,"
        f" {submitted} orders, {counts.get(ev.ORDER_FILLED, 0)} fills;"
        f" {len(at_broker)} orders at the broker: {same}"
    )
    console.print(
        f"  SIGKILL after bar {KILL_AFTER}, restarted: trading again {back:.1f} s after the kill"
        f" (process start, model load, journal replay, broker restore); SIGTERM exit {code}"
    )
    if reconciled:
        last = reconciled[-1]
        state = "[green]book equals broker[/]" if last.matched else f"[red]{last.action}[/]"
        console.print(
            f"  reconciliation: {len(reconciled)} checks (at each start, then every 3 s);"
            f" last ({last.trigger}): {state}, {len(last.differences)} differences"
        )
    if len(latency):
        console.print(
            f"  bar-to-order (bar's load committed -> order at the broker): p50"
            f" {np.percentile(latency, 50):.1f} ms, p99 {np.percentile(latency, 99):.1f} ms over"
            f" {len(latency)} orders; service log {rehearsal.log}"
        )
