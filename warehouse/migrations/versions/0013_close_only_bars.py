"""market.bars: open, high, low and volume nullable, so that close-only sources (price panels
such as skfolio's S&P 500 set) store what they have; close stays required.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OPTIONAL = ("open", "high", "low", "volume")


def upgrade() -> None:
    for column in OPTIONAL:
        op.execute(f"alter table market.bars alter column {column} drop not null")


def downgrade() -> None:
    # a close-only bar has nothing to put there: the downgrade refuses rather than invent prices
    for column in OPTIONAL:
        op.execute(f"alter table market.bars alter column {column} set not null")
