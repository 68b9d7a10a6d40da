"""GARCH source tables that the dbt feature models join.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (re-)estimation: the parameters in force from this bar on, and the one-step
    # variance forecast made at it (percent-return units), so a filter can resume exactly.
    op.execute(
        """
        create table features.garch_fits (
            symbol       text             not null,
            ts           timestamptz      not null,
            n_obs        integer          not null check (n_obs > 0),
            mu           double precision not null,
            omega        double precision not null,
            alpha        double precision not null,
            beta         double precision not null,
            sigma2_next  double precision not null check (sigma2_next >= 0),
            primary key (symbol, ts)
        )
        """
    )
    op.execute(
        """
        create table features.garch_vol (
            symbol       text             not null,
            ts           timestamptz      not null,
            garch_vol    double precision not null check (garch_vol >= 0),
            sigma2_next  double precision not null check (sigma2_next >= 0),
            primary key (symbol, ts)
        )
        """
    )


def downgrade() -> None:
    op.execute("drop table if exists features.garch_vol")
    op.execute("drop table if exists features.garch_fits")
