"""mlops schema: every promotion decision with its gates, and the serving prediction log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # one row per decision, pass or fail: the champion history a rollback walks back along
    op.execute(
        """
        create table mlops.promotions (
            id                bigserial   primary key,
            decided_at        timestamptz not null default now(),
            model             text        not null,
            version           text        not null,
            run_id            text,
            decision          text        not null check (decision in
                                  ('promoted', 'rejected', 'challenger', 'forced', 'rolled_back')),
            champion_model    text,
            champion_version  text,
            gates             jsonb       not null,
            reason            text        not null,
            actor             text        not null
        )
        """
    )
    op.execute("create index promotions_model_idx on mlops.promotions (model, version)")
    # what the service answered (champion, or challenger under an A/B split) and what the
    # shadow challenger would have answered, one row per model per request
    op.execute(
        """
        create table mlops.prediction_log (
            id           bigserial        primary key,
            request_id   text             not null,
            logged_at    timestamptz      not null default now(),
            role         text             not null check (role in ('champion', 'challenger')),
            served       boolean          not null,
            model        text             not null,
            version      text             not null,
            symbols      text[],
            as_of        timestamptz,
            predictions  jsonb            not null,
            latency_ms   double precision not null
        )
        """
    )
    op.execute("create index prediction_log_request_idx on mlops.prediction_log (request_id)")


def downgrade() -> None:
    op.execute("drop table if exists mlops.prediction_log")
    op.execute("drop table if exists mlops.promotions")
