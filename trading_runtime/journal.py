"""The event journal in ``runtime.events``: appended before anything takes effect, read back to
rebuild state.

Paper and live runs write each step (its fills, decisions and the end of its bar) in one
transaction and act only after it commits. Backtests buffer and COPY in batches, each on a
writer thread while the engine simulates the next bars (the server's work overlaps the loop);
the next batch waits for the one before, so the chain stays in order, and a failed batch stops
the run at the next write, before its results are read. One engine
owns a stream at a time (a Postgres advisory lock), so the journal has a single writer of
engine events; operators' commands are the only other writes, and the engine applies them
through ``command_applied`` events so that replay applies them at the same point.

Every event is chained to the one before it in its stream (``warehouse.event_chain``); the
hashes are computed here, as the rows are written. A writer remembers the hash it appended
last and chains to it without asking; when another writer appended meanwhile (an operator's
command) or a keyed event is already there (a redo), the insert fails on a unique index and is
done again under the stream's chain lock, after reading the real last hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import errors

from trading_runtime.events import Command, Event, decode
from warehouse.db import connect
from warehouse.event_chain import canonical, genesis, link

ROWS_PER_INSERT = 5000  # 6 parameters a row, under Postgres's 65,535 per statement
RACES = 5  # locked appends lost to the engine's unlocked ones before giving up
# the unique indexes a concurrent or repeated append trips over (migrations 0005, 0007)
RETRIED = frozenset({"events_key_idx", "events_prev_hash_idx"})


class JournalError(RuntimeError):
    """The journal cannot be written: the engine must stop trading."""


class Link(NamedTuple):
    """One stored row with its place in the chain."""

    seq: int
    type: str
    key: str | None
    payload: dict[str, Any]
    stored: datetime
    prev_hash: bytes
    hash: bytes

    def event(self) -> Event:
        return decode(self.type, self.payload, self.key, self.seq, self.stored)


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


def _retried(exc: psycopg.Error) -> bool:
    return isinstance(exc, errors.UniqueViolation) and exc.diag.constraint_name in RETRIED


class Journal:
    def __init__(self, url: str, stream: str, *, batched: bool = False, batch_size: int = 20_000):
        self.url, self.stream = url, stream
        self.batched, self.batch_size = batched, batch_size
        self._buffer: list[Event] = []
        self._conn = connect(url, autocommit=True)  # transaction() blocks are the commits
        self._lock_conn: psycopg.Connection | None = None
        self._tail: bytes | None = None  # the hash this writer appended last (None: ask)
        self._copier: ThreadPoolExecutor | None = None  # backtests: COPYs behind the loop
        self._behind: tuple[Future, list[Event]] | None = None  # the batch being COPYed
        self._broken: str | None = None  # a batch behind failed: nothing after it is written

    # --- writing ----------------------------------------------------------------------------

    def write(self, events: Sequence[Event], snapshot: dict[str, Any] | None = None) -> None:
        """Append ``events`` (and a snapshot of the state after them) atomically. Events whose
        key is already in the stream are skipped: that is what makes a redo harmless."""
        if self._broken is not None:
            raise JournalError(self._broken)
        if self.batched:
            self._buffer.extend(events)
            if snapshot is not None:
                self.flush(snapshot)
            elif len(self._buffer) >= self.batch_size:
                self._flush_behind()
            return
        self._append(events, snapshot, copy=False)

    @property
    def committed(self) -> bool:
        """Everything written so far is committed (a batched journal holds rows until a
        flush)."""
        return not self._buffer and self._behind is None

    def flush(self, snapshot: dict[str, Any] | None = None) -> None:
        """COPY the buffered events (backtests) in one transaction, after the batch behind."""
        if self._broken is not None:
            raise JournalError(self._broken)
        self._settle()
        if not self._buffer and snapshot is None:
            return
        self._append(self._buffer, snapshot, copy=True)
        self._buffer.clear()

    def _flush_behind(self) -> None:
        """Chain a full batch here and COPY it on the writer thread; the connection is the
        thread's until :meth:`_settle`, which every other use of it calls first."""
        self._settle()
        events, self._buffer = self._buffer, []
        try:
            if self._tail is None:
                self._tail = self._last_hash(self._conn)
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        rows = self._chain(events, self._tail)
        if self._copier is None:
            self._copier = ThreadPoolExecutor(1, thread_name_prefix="journal-copy")
        self._behind = (self._copier.submit(self._store, rows, None, True), events)
        self._tail = rows[-1][-1]

    def _settle(self) -> None:
        """Wait for the batch behind; if another writer got there first, append it again
        under the lock (as :meth:`_append` does)."""
        if self._behind is None:
            return
        future, events = self._behind
        self._behind = None
        try:
            try:
                future.result()
            except psycopg.Error as exc:
                if not _retried(exc):
                    raise
                self._append_locked(events)
        except psycopg.Error as exc:
            # the events after it were decided on it: a journal with a gap would replay wrong
            failed = self._failed(exc)
            self._broken = str(failed)
            self._buffer.clear()
            raise failed from exc

    def _failed(self, exc: psycopg.Error) -> JournalError:
        return JournalError(f"cannot write the journal of {self.stream!r}: {exc}")

    def _append(self, events: Sequence[Event], snapshot: dict[str, Any] | None, copy: bool):
        """Chain ``events`` to the last hash this writer knows and store them (``copy``: with
        COPY); if another writer got there first, or a keyed event is there already, chain
        again under the lock."""
        try:
            try:
                self._tail = self._unlocked(events, snapshot, copy)
            except psycopg.Error as exc:
                if not _retried(exc):
                    raise
                self._append_locked(events, snapshot)
        except psycopg.Error as exc:
            raise self._failed(exc) from exc

    def _unlocked(self, events: Sequence[Event], snapshot, copy: bool) -> bytes:
        """The fast path, and the usual one: no lock, no read. Returns the new last hash."""
        if self._tail is None:
            self._tail = self._last_hash(self._conn)
        rows = self._chain(events, self._tail)
        self._store(rows, snapshot, copy)
        return rows[-1][-1] if rows else self._tail

    def _store(self, rows: Sequence[tuple], snapshot: dict[str, Any] | None, copy: bool) -> None:
        if not copy and snapshot is None and len(rows) <= ROWS_PER_INSERT:
            if rows:  # one statement is its own transaction: one round trip
                self._insert(self._conn, rows)
        else:
            with self._conn.transaction(), self._conn.cursor() as cur:
                (self._copy if copy else self._insert_all)(cur, rows)
                if snapshot is not None:
                    self._snapshot(cur, snapshot)

    def _append_locked(
        self, events: Sequence[Event], snapshot: dict[str, Any] | None = None
    ) -> list[int]:
        """Append under the stream's chain lock after reading its real last hash, without the
        keyed events it already holds; returns the new rows' seqs. A race lost to an unlocked
        append (the engine's) is run again."""
        lost = 0
        while True:
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    cur.execute(  # two keys: apart from the engines' one-key stream locks
                        "select pg_advisory_xact_lock(hashtext('qtis.chain'), hashtext(%s))",
                        (self.stream,),
                    )
                    tail = self._last_hash(cur)
                    rows = self._chain(self._new(cur, events), tail)
                    seqs = self._insert_all(cur, rows, returning=True)
                    if snapshot is not None:
                        self._snapshot(cur, snapshot)
                break
            except psycopg.Error as exc:
                lost += 1
                if not _retried(exc) or lost >= RACES:
                    raise
        self._tail = rows[-1][-1] if rows else tail
        return seqs

    def _new(self, cur: psycopg.Cursor, events: Sequence[Event]) -> list[Event]:
        """``events`` less those whose key the stream holds (or that repeat one before them)."""
        keys = [e.key for e in events if e.key is not None]
        seen = set()
        if keys:
            cur.execute(
                "select key from runtime.events where stream = %s and key = any(%s)",
                (self.stream, keys),
            )
            seen = {k for (k,) in cur.fetchall()}
        out = []
        for e in events:
            if e.key is not None:
                if e.key in seen:
                    continue
                seen.add(e.key)
            out.append(e)
        return out

    def _last_hash(self, target) -> bytes:
        row = target.execute(
            "select hash from runtime.events where stream = %s order by seq desc limit 1",
            (self.stream,),
        ).fetchone()
        return row[0] if row else genesis(self.stream)

    def _chain(self, events: Sequence[Event], prev: bytes) -> list[tuple]:
        """The rows of ``events``, each chained to the one before."""
        rows = []
        for e in events:
            text = canonical(e.to_payload())
            digest = link(prev, e.type, e.key, text)
            rows.append((self.stream, e.type, e.key, text, prev, digest))
            prev = digest
        return rows

    def _insert(self, target, rows: Sequence[tuple], returning: bool = False) -> list[int]:
        """Rows in their order (VALUES keeps it, and seq follows it)."""
        values = ", ".join(["(%s, %s, %s, %s::jsonb, %s, %s)"] * len(rows))
        cur = target.execute(
            "insert into runtime.events (stream, type, key, payload, prev_hash, hash)"
            f" values {values}" + (" returning seq" if returning else ""),
            [v for row in rows for v in row],
        )
        return [seq for (seq,) in cur.fetchall()] if returning else []

    def _insert_all(self, cur, rows: Sequence[tuple], returning: bool = False) -> list[int]:
        seqs = []
        for i in range(0, len(rows), ROWS_PER_INSERT):
            seqs += self._insert(cur, rows[i : i + ROWS_PER_INSERT], returning)
        return seqs

    def _copy(self, cur: psycopg.Cursor, rows: Sequence[tuple]) -> None:
        columns = "stream, type, key, payload, prev_hash, hash"
        with cur.copy(f"copy runtime.events ({columns}) from stdin") as cp:
            for row in rows:
                cp.write_row(row)

    def _snapshot(self, cur: psycopg.Cursor, state: dict[str, Any]) -> None:
        cur.execute(
            "insert into runtime.snapshots (stream, seq, state) select %s,"
            " coalesce(max(seq), 0), %s::jsonb from runtime.events where stream = %s",
            (self.stream, _dumps(state), self.stream),
        )

    def append_command(self, command: Command) -> int:
        """An operator's command (from another process than the engine); returns its seq."""
        self._settle()
        try:
            (seq,) = self._append_locked([command])
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        return seq

    # --- reading ----------------------------------------------------------------------------

    def exists(self) -> bool:
        self._settle()
        return self._conn.execute(
            "select exists (select 1 from runtime.events where stream = %s)", (self.stream,)
        ).fetchone()[0]

    def links(self) -> Iterator[Link]:
        """Every row of the stream in order, with its hashes (a server-side cursor)."""
        query = (
            "select seq, type, key, payload, ts, prev_hash, hash from runtime.events"
            " where stream = %s order by seq"
        )
        with connect(self.url) as conn, conn.cursor(name="journal_links") as cur:
            cur.itersize = 5000
            cur.execute(query, (self.stream,))
            for row in cur:
                yield Link(*row)

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
        self._settle()
        rows = self._conn.execute(
            "select seq, type, key, payload, ts from runtime.events"
            " where stream = %s and type = 'command' order by seq",
            (self.stream,),
        ).fetchall()
        return [decode(t, p, k, s, ts) for s, t, k, p, ts in rows]

    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        self._settle()
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
            if self.batched and not self._conn.closed and self._broken is None:
                self.flush()
        finally:
            if self._copier is not None:
                self._copier.shutdown()
            self.release()
            self._conn.close()


def streams(url: str) -> list[tuple[str, int, Any]]:
    """Every stream with its event count and last write."""
    with connect(url) as conn:
        return conn.execute(
            "select stream, count(*), max(ts) from runtime.events group by stream order by 3 desc"
        ).fetchall()
