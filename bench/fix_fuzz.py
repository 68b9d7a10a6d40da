"""FIX against a hostile venue: rounds of orders filled in parts while the venue's wire drops,
duplicates, swaps, truncates, corrupts and prefixes with garbage the messages a random plan
names, and the venue slips in reports and admin messages no honest venue sends; in half the
rounds the gateway crashes before a journal write and a new one restores (the round driver is
tests/support/hostile.py, the one the property test uses).

    python -m bench.fix_fuzz [--rounds 100] [--seed 1]

Reliability: every fill the venue sent must be applied exactly once (fills lost and fills
applied twice: 0), and no thread may die of an exception. Needs no database.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench._results import write
from tests.support.hostile import EXTRAS, hostile_round
from tests.support.venue import ACTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    logging.disable(logging.WARNING)  # the session logs every Reject it sends
    died: list[str] = []
    threading.excepthook = lambda a: died.append(f"{a.thread.name}: {a.exc_value!r}")
    rng = random.Random(args.seed)
    totals = dict.fromkeys(("messages", "fuzzed", "fills", "lost", "repeated", "foreign",
                            "alerts", "refused_logons", "crashes"), 0)  # fmt: skip
    started = time.perf_counter()
    with console.status(f"{args.rounds} rounds against a hostile venue"):
        for _ in range(args.rounds):
            plan = [(rng.choice(ACTIONS), rng.randrange(10_000)) for _ in range(rng.randrange(41))]
            partials = [[rng.randint(1, 33) for _ in range(rng.randrange(4))]
                        for _ in range(rng.randint(1, 3))]  # fmt: skip
            extras = [rng.choice(EXTRAS) for _ in range(rng.randrange(5))]
            crash = rng.randrange(13) if rng.random() < 0.5 else None
            tally = hostile_round(Path(tempfile.mkdtemp(prefix="qtis-fix-fuzz-")), plan,
                                  partials, extras, crash)  # fmt: skip
            for key, value in (("messages", tally.written), ("fuzzed", tally.fuzzed),
                               ("fills", len(tally.sent)), ("lost", len(tally.lost)),
                               ("repeated", len(tally.repeated)),
                               ("foreign", len(tally.foreign)), ("alerts", len(tally.alerts)),
                               ("refused_logons", tally.refused),
                               ("crashes", tally.crashed)):  # fmt: skip
                totals[key] += value
    took = time.perf_counter() - started
    table = Table("measurement", "result", "target", title="FIX against a hostile venue")
    table.add_row("rounds (crash + restore in)", f"{args.rounds} ({totals['crashes']})", "")
    table.add_row("messages written by the venue", f"{totals['messages']:,}", "")
    table.add_row("of them mangled on the wire", f"{totals['fuzzed']:,}", "")
    table.add_row("fills sent by the venue", f"{totals['fills']:,}", "")
    table.add_row("fills lost", f"{totals['lost']}", "0")
    table.add_row("fills applied twice / never sent", f"{totals['repeated']} / "
                  f"{totals['foreign']}", "0 / 0")  # fmt: skip
    table.add_row("threads died", f"{len(died)}", "0")
    table.add_row("alerts journaled / Logons the wire spoiled",
                  f"{totals['alerts']} / {totals['refused_logons']}", "")  # fmt: skip
    console.print(table)
    clean = totals["lost"] == totals["repeated"] == totals["foreign"] == len(died) == 0
    write("fix_fuzz", {
        "rounds": args.rounds, "seed": args.seed, **totals, "threads_died": died,
        "total_s": took, "targets": {"no_fill_lost_or_repeated": clean},
    }, console)  # fmt: skip


if __name__ == "__main__":
    main()
