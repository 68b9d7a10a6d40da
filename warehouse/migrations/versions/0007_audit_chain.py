"""runtime.events becomes append-only and hash-chained: every event carries ``prev_hash`` and
``hash`` (``warehouse.event_chain``), the events already there are chained in seq order, and
triggers refuse UPDATE, DELETE and TRUNCATE.

Streams are never deleted: a run that should not count is left in place and a new ``--stream``
used. An administrator who must remove data (a retention policy) has to disable the triggers as
a superuser, which `qtis trade replay` then reports as a broken chain in every stream touched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from warehouse.event_chain import canonical, genesis, link

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BACKFILL_ROWS = 5000


def _chain_existing() -> None:
    """Hash the events written before this revision, stream by stream in seq order (what they
    hold now is what the chain vouches for)."""
    conn = op.get_bind()
    query = sa.text(
        "select seq, stream, type, key, payload from runtime.events order by stream, seq"
    )
    rows = conn.execute(query.execution_options(stream_results=True, yield_per=BACKFILL_ROWS))
    stream, prev, batch = None, b"", []
    for seq, row_stream, type_, key, payload in rows:
        if row_stream != stream:
            stream, prev = row_stream, genesis(row_stream)
        digest = link(prev, type_, key, canonical(payload))
        batch.append({"seq": seq, "prev": prev, "hash": digest})
        prev = digest
        if len(batch) >= BACKFILL_ROWS:
            _store(conn, batch)
            batch = []
    if batch:
        _store(conn, batch)


def _store(conn: sa.Connection, batch: list[dict]) -> None:
    conn.execute(
        sa.text("update runtime.events set prev_hash = :prev, hash = :hash where seq = :seq"),
        batch,
    )


def upgrade() -> None:
    op.execute("alter table runtime.events add column prev_hash bytea, add column hash bytea")
    _chain_existing()
    op.execute(
        "alter table runtime.events alter column prev_hash set not null,"
        " alter column hash set not null"
    )
    # no two events follow the same one: two writers that both saw the same last event cannot
    # both append after it (the second gets a unique violation and chains again)
    op.execute("create unique index events_prev_hash_idx on runtime.events (prev_hash)")
    op.execute(
        """
        create function runtime.events_append_only() returns trigger language plpgsql as $$
        begin
          raise exception 'runtime.events is append-only: % refused', tg_op
            using hint = 'the journal is the record of what happened; start a new --stream'
                         ' instead of changing an old one';
        end $$
        """
    )
    op.execute(
        "create trigger events_append_only before update or delete on runtime.events"
        " for each row execute function runtime.events_append_only()"
    )
    op.execute(
        "create trigger events_no_truncate before truncate on runtime.events"
        " for each statement execute function runtime.events_append_only()"
    )


def downgrade() -> None:
    op.execute("drop trigger if exists events_no_truncate on runtime.events")
    op.execute("drop trigger if exists events_append_only on runtime.events")
    op.execute("drop function if exists runtime.events_append_only()")
    op.execute("drop index if exists runtime.events_prev_hash_idx")
    op.execute("alter table runtime.events drop column hash, drop column prev_hash")
