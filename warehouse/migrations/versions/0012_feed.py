"""market.instruments.exchange: the MIC whose trading calendar (exchange_calendars) says when
the instrument trades; existing and bare instruments default to XNYS.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table market.instruments add column exchange text not null default 'XNYS'")


def downgrade() -> None:
    op.execute("alter table market.instruments drop column exchange")
