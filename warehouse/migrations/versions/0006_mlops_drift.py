"""mlops.drift_results: every drift check's numbers, one row per measure, for history and for
the sensors that act on them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table mlops.drift_results (
            id                bigserial   primary key,
            run_id            text        not null,
            computed_at       timestamptz not null default now(),
            model             text        not null,
            version           text        not null,
            kind              text        not null check (kind in
                                  ('data', 'prediction', 'performance', 'attribution')),
            measure           text        not null,
            value             double precision,
            threshold         double precision,
            drifted           boolean     not null,
            reference_start   timestamptz,
            reference_end     timestamptz,
            current_start     timestamptz,
            current_end       timestamptz,
            report_path       text
        )
        """
    )
    op.execute("create index drift_results_run_idx on mlops.drift_results (computed_at, kind)")


def downgrade() -> None:
    op.execute("drop table if exists mlops.drift_results")
