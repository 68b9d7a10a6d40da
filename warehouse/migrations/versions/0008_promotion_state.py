"""mlops.promotions.state: a decision that moves an alias is recorded ``pending`` before the move
and marked ``applied`` after it; one a crash interrupted is reconciled by the next move
(``applied`` if the alias did move, ``abandoned`` if not). Earlier rows were applied.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table mlops.promotions add column state text not null default 'applied'"
        " check (state in ('pending', 'applied', 'abandoned'))"
    )


def downgrade() -> None:
    op.execute("alter table mlops.promotions drop column if exists state")
