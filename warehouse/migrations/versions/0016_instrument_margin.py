"""market.instruments.initial_margin: the initial margin one futures contract ties up, in the
instrument's currency; null where the exchange's figure is unknown (the pre-trade check then
takes QTIS_RISK_FUTURES_MARGIN of the notional) and for everything that is not a future.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "alter table market.instruments add column initial_margin double precision"
        " check (initial_margin > 0)"
    )


def downgrade() -> None:
    op.execute("alter table market.instruments drop column initial_margin")
