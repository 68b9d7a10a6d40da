"""Loads into ``market.bars`` announce themselves: ``pg_notify('qtis_bars', json)``.

The NOTIFY is sent inside the load's transaction, so Postgres delivers it when (and only if)
the load commits: a listener that hears it can read the bars. A load that changed nothing
(every row already stored with the same values) announces nothing: there is nothing new to
read. The payload names the symbols and the time range loaded; a list of symbols too long for
Postgres's 8000-byte payload is sent as ``null`` ("any symbol": read the range for all).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import psycopg

from warehouse.db import connect

CHANNEL = "qtis_bars"
MAX_PAYLOAD = 8000  # bytes: Postgres refuses a NOTIFY payload of this size or more
_STAMP_ROOM = 32  # bytes the server's committed_at may take beyond the placeholder 0

# committed_at: the server's clock at the NOTIFY, the start of bench/live.py's latency
_NOTIFY = """
select pg_notify(%s, (%s::jsonb || jsonb_build_object('committed_at',
                      extract(epoch from clock_timestamp())::float8))::text)
"""


@dataclass(frozen=True)
class BarsLoaded:
    """One committed load: bars of ``symbols`` (None: too many to name) in [first, last]."""

    first: datetime
    last: datetime
    symbols: tuple[str, ...] | None
    rows: int
    inserted: int
    updated: int
    committed_at: float  # epoch seconds, the server's clock when it was announced

    @classmethod
    def parse(cls, text: str) -> BarsLoaded:
        data = json.loads(text)
        symbols = data["symbols"]
        return cls(
            datetime.fromisoformat(data["first"]),
            datetime.fromisoformat(data["last"]),
            None if symbols is None else tuple(symbols),
            int(data["rows"]),
            int(data["inserted"]),
            int(data["updated"]),
            float(data["committed_at"]),
        )


def payload(
    symbols: Sequence[str],
    first: datetime,
    last: datetime,
    rows: int,
    inserted: int,
    updated: int,
) -> str:
    """The JSON announced (``committed_at`` 0: the server sets it), symbols null if too long."""
    body = {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "symbols": sorted(symbols),
        "rows": rows,
        "inserted": inserted,
        "updated": updated,
        "committed_at": 0,
    }
    text = json.dumps(body)
    if len(text.encode()) + _STAMP_ROOM >= MAX_PAYLOAD:
        text = json.dumps(body | {"symbols": None})
    return text


def announce(
    cur: psycopg.Cursor,
    symbols: Sequence[str],
    first: datetime,
    last: datetime,
    rows: int,
    inserted: int,
    updated: int,
) -> None:
    """NOTIFY inside the caller's transaction (delivered at its commit); nothing if the load
    changed no row."""
    if inserted + updated == 0:
        return
    cur.execute(_NOTIFY, (CHANNEL, payload(symbols, first, last, rows, inserted, updated)))


class BarListener:
    """LISTEN on ``qtis_bars`` over an autocommit connection of its own.

    Start listening before reading what is stored, so that no load falls between the read
    and the first announcement."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> BarListener:
        self._conn = connect(self.url, autocommit=True)
        self._conn.execute(f"listen {CHANNEL}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def wait(self, timeout: float) -> list[BarsLoaded]:
        """The loads announced: waits up to ``timeout`` seconds for the first, then takes
        every one already received."""
        if self._conn is None:
            raise RuntimeError("BarListener is not open: use it as a context manager")
        got = list(self._conn.notifies(timeout=timeout, stop_after=1))
        if got:
            got += self._conn.notifies(timeout=0)
        return [BarsLoaded.parse(n.payload) for n in got if n.channel == CHANNEL]
