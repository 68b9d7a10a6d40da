"""runtime schema: the trading journal (every command and state change, append-only) and the
snapshots that let a restart skip replaying the whole stream.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``key`` is the idempotency key of an event that must happen once (an order's submission,
    # a fill): the unique index makes a second append of it a no-op, so a replayed decision
    # can never send an order twice or book a fill twice
    op.execute(
        """
        create table runtime.events (
            seq      bigserial   primary key,
            stream   text        not null,
            type     text        not null,
            key      text,
            payload  jsonb       not null,
            ts       timestamptz not null default now()
        )
        """
    )
    op.execute("create index events_stream_idx on runtime.events (stream, seq)")
    op.execute("create unique index events_key_idx on runtime.events (stream, key)")
    # a running engine polls for operators' commands every bar
    op.execute(
        "create index events_commands_idx on runtime.events (stream, seq) where type = 'command'"
    )
    op.execute(
        """
        create table runtime.snapshots (
            stream    text        not null,
            seq       bigint      not null,
            state     jsonb       not null,
            taken_at  timestamptz not null default now(),
            primary key (stream, seq)
        )
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists runtime.snapshots")
    op.execute("drop table if exists runtime.events")
