"""advice: questions to the experts from a village's page, answered by the county.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('advice_question',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('category', sa.Enum('farming', 'legal', 'other', name='advice_category', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('contact_name', sa.String(length=60), nullable=False),
    sa.Column('contact_phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('contact_phone_masked', sa.String(length=20), nullable=True),
    sa.Column('asked_at', sa.DateTime(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['village_code'], ['region.code'], name=op.f('fk_advice_question_village_code_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_advice_question')),
    sa.UniqueConstraint('reference', name=op.f('uq_advice_question_reference'))
    )
    with op.batch_alter_table('advice_question', schema=None) as batch_op:
        batch_op.create_index('ix_advice_question_queue', ['county_code', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_advice_question_village_code'), ['village_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('advice_question', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_advice_question_village_code'))
        batch_op.drop_index('ix_advice_question_queue')

    op.drop_table('advice_question')
