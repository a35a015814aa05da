"""telemetry: dead-letter quota summaries and the retention of resolved letters

A dead letter with reason `over_quota` stands for the rejections of one gateway in one minute
whose payloads were not kept (telemetry.quota): `dropped_count` of them, `dropped_bytes` of
payload. `resolved_at` is indexed for the retention job that deletes old resolved letters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dropped_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dropped_bytes', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_dead_letters_resolved_at'), ['resolved_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_resolved_at'))
        batch_op.drop_column('dropped_bytes')
        batch_op.drop_column('dropped_count')
