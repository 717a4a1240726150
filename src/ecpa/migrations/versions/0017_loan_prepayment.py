"""loan prepayment: what a payment beyond what is due does, per product and loan.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing products and loans keep what they did: their recorded repayments must
    # replay as they were allocated.
    for table in ('loan_product', 'loan'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('prepayment', sa.String(length=24),
                                          server_default='advance_instalments', nullable=False))


def downgrade() -> None:
    for table in ('loan', 'loan_product'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('prepayment')
