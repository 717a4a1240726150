"""duplicates: a merge can be undone; the record stays, marked, and the household may be
merged again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 11:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('household_merge', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undone_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('undone_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('undo_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('undo_detail', sa.JSON(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_household_merge_merged_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_household_merge_merged_id'), ['merged_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('household_merge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_merge_merged_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_household_merge_merged_id'), ['merged_id'])
        batch_op.drop_column('undo_detail')
        batch_op.drop_column('undo_reason')
        batch_op.drop_column('undone_at')
        batch_op.drop_column('undone_by')
