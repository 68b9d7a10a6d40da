"""The event journal in ``runtime.events``: appended before anything takes effect, read back to
rebuild state.

Paper and live runs write each step (its fills, decisions and the end of its bar) in one
transaction and act only after it commits. Backtests buffer and COPY in batches. One engine
owns a stream at a time (a Postgres advisory lock), so the journal has a single writer of
engine events; operators' commands are the only other writes, and the engine applies them
through ``command_applied`` events so that replay applies them at the same point.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from trading_runtime.events import COMMAND, Command, Event, decode
from warehouse.db import connect

ROWS_PER_INSERT = 5000  # 4 parameters a row, under Postgres's 65,535 per statement


class JournalError(RuntimeError):
    """The journal cannot be written: the engine must stop trading."""


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


class Journal:
    def __init__(self, url: str, stream: str, *, batched: bool = False, batch_size: int = 20_000):
        self.url, self.stream = url, stream
        self.batched, self.batch_size = batched, batch_size
        self._buffer: list[tuple[str, str, str | None, str]] = []
        self._conn = connect(url, autocommit=True)  # transaction() blocks are the commits
        self._lock_conn: psycopg.Connection | None = None

    # --- writing ----------------------------------------------------------------------------

    def write(self, events: Sequence[Event], snapshot: dict[str, Any] | None = None) -> None:
        """Append ``events`` (and a snapshot of the state after them) atomically. Events whose
        key is already in the stream are skipped: that is what makes a redo harmless."""
        if self.batched:
            self._buffer.extend(
                (self.stream, e.type, e.key, _dumps(e.to_payload())) for e in events
            )
            if snapshot is not None or len(self._buffer) >= self.batch_size:
                self.flush(snapshot)
            return
        try:
            if snapshot is None and len(events) <= ROWS_PER_INSERT:
                if events:  # one statement is its own transaction: one round trip
                    self._insert(self._conn, events)
                return
            with self._conn.transaction(), self._conn.cursor() as cur:
                for i in range(0, len(events), ROWS_PER_INSERT):
                    self._insert(cur, events[i : i + ROWS_PER_INSERT])
                if snapshot is not None:
                    self._snapshot(cur, snapshot)
        except psycopg.Error as exc:
            raise JournalError(f"cannot write the journal of {self.stream!r}: {exc}") from exc

    @property
    def committed(self) -> bool:
        """Everything written so far is committed (a batched journal holds rows until a
        flush)."""
        return not self._buffer

    def _insert(self, target, events: Sequence[Event]) -> None:
        """Rows in the events' order (VALUES keeps it, and seq follows it)."""
        rows = ", ".join(["(%s, %s, %s, %s::jsonb)"] * len(events))
        params = [v for e in events for v in (self.stream, e.type, e.key, _dumps(e.to_payload()))]
        target.execute(
            f"insert into runtime.events (stream, type, key, payload) values {rows}"
            " on conflict (stream, key) do nothing",
            params,
        )

    def flush(self, snapshot: dict[str, Any] | None = None) -> None:
        """COPY the buffered events (backtests) in one transaction."""
        if not self._buffer and snapshot is None:
            return
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                with cur.copy("copy runtime.events (stream, type, key, payload) from stdin") as cp:
                    for row in self._buffer:
                        cp.write_row(row)
                if snapshot is not None:
                    self._snapshot(cur, snapshot)
        except psycopg.Error as exc:
            raise JournalError(f"cannot write the journal of {self.stream!r}: {exc}") from exc
        self._buffer.clear()

    def _snapshot(self, cur: psycopg.Cursor, state: dict[str, Any]) -> None:
        cur.execute(
            "insert into runtime.snapshots (stream, seq, state) select %s,"
            " coalesce(max(seq), 0), %s::jsonb from runtime.events where stream = %s",
            (self.stream, _dumps(state), self.stream),
        )

    def append_command(self, command: Command) -> int:
        """An operator's command (from another process than the engine); returns its seq."""
        with self._conn.transaction():
            (seq,) = self._conn.execute(
                "insert into runtime.events (stream, type, payload) values (%s, %s, %s::jsonb)"
                " returning seq",
                (self.stream, COMMAND, _dumps(command.to_payload())),
            ).fetchone()
        return seq

    # --- reading ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self._conn.execute(
            "select exists (select 1 from runtime.events where stream = %s)", (self.stream,)
        ).fetchone()[0]

    def read(self, after: int = 0, types: Sequence[str] | None = None) -> Iterator[Event]:
        """Events with seq > ``after`` in order (a server-side cursor: streams may be long)."""
        query = (
            "select seq, type, key, payload, ts from runtime.events"
            " where stream = %s and seq > %s and (%s::text[] is null or type = any(%s))"
            " order by seq"
        )
        with connect(self.url) as conn, conn.cursor(name="journal_read") as cur:
            cur.itersize = 5000
            cur.execute(query, (self.stream, after, types, types))
            for seq, type_, key, payload, ts in cur:
                yield decode(type_, payload, key, seq, ts)

    def commands(self) -> list[Command]:
        """Every operator command of the stream (few; the partial index finds them)."""
        rows = self._conn.execute(
            "select seq, type, key, payload, ts from runtime.events"
            " where stream = %s and type = 'command' order by seq",
            (self.stream,),
        ).fetchall()
        return [decode(t, p, k, s, ts) for s, t, k, p, ts in rows]

    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        row = self._conn.execute(
            "select seq, state from runtime.snapshots where stream = %s order by seq desc limit 1",
            (self.stream,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    # --- ownership --------------------------------------------------------------------------

    def acquire(self) -> bool:
        """Take the stream's writer lock (held until close); False if an engine holds it."""
        self._lock_conn = self._lock_conn or connect(self.url, autocommit=True)
        return self._lock_conn.execute(
            "select pg_try_advisory_lock(hashtext('qtis.runtime:' || %s))", (self.stream,)
        ).fetchone()[0]

    def release(self) -> None:
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None

    def close(self) -> None:
        try:
            if self.batched and not self._conn.closed:
                self.flush()
        finally:
            self.release()
            self._conn.close()


def streams(url: str) -> list[tuple[str, int, Any]]:
    """Every stream with its event count and last write."""
    with connect(url) as conn:
        return conn.execute(
            "select stream, count(*), max(ts) from runtime.events group by stream order by 3 desc"
        ).fetchall()
