"""marketplace: returns of delivered and completed orders (seven days without reason,
or quality), accepted and refunded or refused.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('market_return',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=150), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('kind', sa.Enum('no_reason', 'quality', name='return_kind', native_enum=False,
                              create_constraint=True, length=24), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('requested', 'refunded', 'refused', name='return_state',
                               native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decision_note', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['market_order.id'], name=op.f('fk_market_return_order_id_market_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_return')),
    sa.UniqueConstraint('order_id', 'key', name=op.f('uq_market_return_order_id'))
    )
    with op.batch_alter_table('market_return', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_return_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_return_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('market_return', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_return_state'))
        batch_op.drop_index(batch_op.f('ix_market_return_order_id'))
    op.drop_table('market_return')
