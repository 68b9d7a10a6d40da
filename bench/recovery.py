"""Crash recovery: a paper run of the trading engine killed with ``kill -9`` at 20 random points
(a random 1..150 new journal events after each restart) and restarted each time, against the
same run uninterrupted, in the same database.

    python -m bench.recovery [--kills 20] [--seed 1]

RPO: the final state (every order with its status and fills, cash, positions, the last bar)
must equal the uninterrupted run's, every order must be journaled and received by the venue
exactly once. RTO: seconds from a restart (a new process) to its first new journal event,
which includes starting Python, rebuilding the state and replaying the bars before the resume
point through the features. Uses a scratch database (bench_recovery) with the bundled sample.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings

STRATEGY = dict(signal="sma-cross", fast=3, slow=8, trail_atr=2.0)
START = "2011-01-03"


def final_state(url: str, stream: str) -> tuple:
    from trading_runtime.engine import rebuild
    from trading_runtime.journal import Journal

    journal = Journal(url, stream)
    try:
        book = rebuild(journal)
        fills = [e.fill.to_payload() for e in journal.read(types=["order_filled"])]
        sent = [e.order.client_id for e in journal.read(types=["order_submitted"])]
    finally:
        journal.close()
    orders = {c: (o.status, o.filled, round(o.avg_price, 9)) for c, o in book.orders.items()}
    accounts = {
        n: (round(a.cash, 6), {s: p.quantity for s, p in a.positions.items()})
        for n, a in book.accounts.items()
    }
    return orders, accounts, fills, sent, book.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    console = Console()

    from trading_runtime.chaos import crash_and_resume
    from trading_runtime.config import RunConfig, StrategyConfig
    from trading_runtime.runs import run
    from warehouse.db import recreate_database
    from warehouse.ingest import ingest
    from warehouse.providers.bundled import BundledProvider
    from warehouse.schema import migrate

    url = recreate_database("bench_recovery", get_settings())
    migrate(url)
    ingest(BundledProvider(), url, get_settings())
    home = Path(tempfile.mkdtemp(prefix="qtis-recovery-"))
    env = {**os.environ, "QTIS_DATABASE_URL": url, "QTIS_HOME": str(home / ".qtis")}
    with console.status("the uninterrupted run"):
        config = RunConfig(mode="paper", stream="calm", strategies=[StrategyConfig(**STRATEGY)],
                           start=date.fromisoformat(START))  # fmt: skip
        run(url, config, venue_log=home / "calm.jsonl")
    log = home / "crashy.jsonl"
    cli = ["--signal", "sma-cross", "--fast", "3", "--slow", "8", "--trail-atr", "2",
           "--start", START, "--bars-per-second", "0", "--venue-log", str(log)]  # fmt: skip
    with console.status(f"{args.kills} kill -9 and restarts"):
        crashes = crash_and_resume(url, "crashy", cli, env, args.kills, args.seed)
    calm, crashy = final_state(url, "calm"), final_state(url, "crashy")
    received = Counter(json.loads(line)["client_id"] for line in log.read_text().splitlines())
    sent = Counter(crashy[3])
    same = calm == crashy
    once = max(sent.values()) == 1 and received == sent
    rto = np.asarray(crashes.restart_seconds)
    table = Table("measurement", "result", "target", title="kill -9 recovery (paper mode)")
    table.add_row("kills (random points)", f"{crashes.kills}", "20")
    table.add_row("final state = uninterrupted run", "yes" if same else "[red]no[/]", "yes")
    table.add_row("orders journaled once, received by the venue once",
                  "yes" if once else "[red]no[/]", "yes")  # fmt: skip
    table.add_row("orders / fills", f"{len(crashy[0])} / {len(crashy[2])}", "")
    table.add_row("restart -> trading again (median / max)",
                  f"{np.median(rto):.1f} s / {rto.max():.1f} s", "< 30 s")  # fmt: skip
    console.print(table)
    write("recovery", {
        "kills": crashes.kills, "killed_at_events": crashes.killed_at,
        "restart_seconds": crashes.restart_seconds, "state_equal": same,
        "orders_once": once, "orders": len(crashy[0]), "fills": len(crashy[2]),
        "targets": {"rpo_zero": same and once, "rto_under_30s": bool(rto.max() < 30),
                    "kills_20": crashes.kills >= 20},
    }, console)  # fmt: skip


if __name__ == "__main__":
    main()
