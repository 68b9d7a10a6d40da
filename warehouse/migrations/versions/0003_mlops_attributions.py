"""mlops schema: the feature-attribution ranking of each registered model version.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("create schema if not exists mlops")
    # one row per (model version, feature): the reference that monitoring compares later
    # attributions with (attribution drift)
    op.execute(
        """
        create table mlops.feature_attributions (
            model         text             not null,
            version       text             not null,
            run_id        text             not null,
            feature       text             not null,
            rank          integer          not null check (rank >= 1),
            mean_abs      double precision not null check (mean_abs >= 0),
            by_horizon    jsonb            not null,
            method        text             not null,
            samples       integer          not null check (samples > 0),
            computed_at   timestamptz      not null default now(),
            primary key (model, version, feature)
        )
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists mlops.feature_attributions")
