"""market.instruments for derivatives: ``underlying`` (a future's root, an option's underlying
symbol), ``expiry``, and an option's ``strike``, ``option_right`` and ``exercise_style``; the
asset class ``option`` is allowed, and an option row must carry all of its terms.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

CLASSES = "('equity', 'future', 'fx', 'crypto', 'etf', 'index', 'option')"
OLD_CLASSES = "('equity', 'future', 'fx', 'crypto', 'etf', 'index')"


def upgrade() -> None:
    op.execute(
        f"""
        alter table market.instruments
            add column underlying text,
            add column expiry date,
            add column strike double precision check (strike > 0),
            add column option_right text check (option_right in ('call', 'put')),
            add column exercise_style text check (exercise_style in ('european', 'american')),
            drop constraint instruments_asset_class_check,
            add constraint instruments_asset_class_check check (asset_class in {CLASSES}),
            add constraint instruments_option_terms check (
                asset_class <> 'option' or (underlying is not null and expiry is not null
                and strike is not null and option_right is not null
                and exercise_style is not null))
        """
    )


def downgrade() -> None:
    op.execute("delete from market.instruments where asset_class = 'option'")
    op.execute(
        f"""
        alter table market.instruments
            drop constraint instruments_option_terms,
            drop constraint instruments_asset_class_check,
            add constraint instruments_asset_class_check check (asset_class in {OLD_CLASSES}),
            drop column exercise_style, drop column option_right, drop column strike,
            drop column expiry, drop column underlying
        """
    )
