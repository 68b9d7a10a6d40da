"""mlops.ensemble_weights: the weights an ensemble run's combiner used at every out-of-sample
bar (per horizon, volatility regime and member), so how they moved over time can be read back.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table mlops.ensemble_weights (
            run_id      text             not null,
            model       text             not null,
            version     text             not null,
            combiner    text             not null check (combiner in ('stack', 'vote', 'select')),
            ts          timestamptz      not null,
            horizon     integer          not null check (horizon > 0),
            regime      text             not null check (regime in
                                             ('pooled', 'low_vol', 'high_vol')),
            member      text             not null,
            weight      double precision not null,
            primary key (run_id, ts, horizon, regime, member)
        )
        """
    )
    op.execute(
        "create index ensemble_weights_version_idx on mlops.ensemble_weights (model, version)"
    )


def downgrade() -> None:
    op.execute("drop table if exists mlops.ensemble_weights")
