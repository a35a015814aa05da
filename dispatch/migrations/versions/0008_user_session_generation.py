"""users.session_generation: cookie sessions that end on the server

A session cookie is signed, not stored: until now a copy of it kept working after its owner
signed out. Each cookie now carries the generation it was issued under, and sign-out, a password
change or reset and disabling the person bump the user's generation, so every older cookie
(a stolen copy too) stops working at once. Existing cookies carry none: people sign in again once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 00:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
