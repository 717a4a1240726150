"""cooperatives: members' trade and the return of surplus by trade volume.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coop_trade',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cooperative_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('traded_on', sa.Date(), nullable=False),
    sa.Column('product', sa.String(length=100), nullable=False),
    sa.Column('value_fen', sa.BigInteger(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cooperative_id'], ['organisation.id'], name=op.f('fk_coop_trade_cooperative_id_organisation')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_coop_trade_household_id_household')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_trade')),
    sa.UniqueConstraint('cooperative_id', 'key', name=op.f('uq_coop_trade_cooperative_id'))
    )
    with op.batch_alter_table('coop_trade', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_trade_cooperative_id'), ['cooperative_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_trade_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_trade_traded_on'), ['traded_on'], unique=False)
    # Charters and distributions made before: nothing returned by trade.
    with op.batch_alter_table('coop_charter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trade_return_bp', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('coop_distribution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trade_return_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('total_trade_fen', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('coop_distribution_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trade_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('trade_return_fen', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('coop_distribution_line', schema=None) as batch_op:
        batch_op.drop_column('trade_return_fen')
        batch_op.drop_column('trade_fen')
    with op.batch_alter_table('coop_distribution', schema=None) as batch_op:
        batch_op.drop_column('total_trade_fen')
        batch_op.drop_column('trade_return_fen')
    with op.batch_alter_table('coop_charter', schema=None) as batch_op:
        batch_op.drop_column('trade_return_bp')
    with op.batch_alter_table('coop_trade', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_trade_traded_on'))
        batch_op.drop_index(batch_op.f('ix_coop_trade_household_id'))
        batch_op.drop_index(batch_op.f('ix_coop_trade_cooperative_id'))
    op.drop_table('coop_trade')
