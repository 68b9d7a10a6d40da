"""mlops.promotions.artifact_sha256: the sha256 of the version's artifacts when it was decided on
(its registration digest, which the serving probe checked the files against), so that what is
served later can be checked against what passed the gates.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table mlops.promotions add column artifact_sha256 text")


def downgrade() -> None:
    op.execute("alter table mlops.promotions drop column if exists artifact_sha256")
