"""depot: an index of check-out lines by item, for an item's history

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:40:00
"""

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_depot_checkout_lines_item", "depot_checkout_lines", ["item_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_depot_checkout_lines_item", table_name="depot_checkout_lines")
