"""market.series: point-in-time alternative data (macro, sentiment, ...) with the time each value
was observed for and the time it became known, several vintages per observation; and
market.series_quarantine for the rows an ingest refused, with the reason.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A revision is a new row with a later released_at: the key keeps every vintage, so an as-of
    # read takes, per observation, the latest vintage released at or before its time.
    op.execute(
        """
        create table market.series (
            series_id    text             not null,
            observed_at  timestamptz      not null,
            released_at  timestamptz      not null,
            value        double precision not null,
            source       text             not null,
            ingested_at  timestamptz      not null default now(),
            primary key (series_id, observed_at, released_at),
            check (released_at >= observed_at)
        )
        """
    )
    op.execute("create index series_released_idx on market.series (series_id, released_at)")
    op.execute(
        """
        create table market.series_quarantine (
            id           bigserial primary key,
            series_id    text,
            raw          jsonb not null,
            reason       text not null,
            source       text not null,
            ingested_at  timestamptz not null default now()
        )
        """
    )
    # the same bad row from the same source is kept once, however often it is re-ingested
    op.execute(
        "create unique index series_quarantine_once on market.series_quarantine "
        "(source, md5(raw::text), reason)"
    )


def downgrade() -> None:
    op.execute("drop table if exists market.series_quarantine")
    op.execute("drop table if exists market.series")
