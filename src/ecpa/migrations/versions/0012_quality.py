"""data quality: runs and worklist items

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quality_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('run_by', sa.String(length=64), nullable=False),
    sa.Column('run_at', sa.DateTime(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('findings', sa.Integer(), nullable=False),
    sa.Column('opened', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_run'))
    )
    op.create_index(op.f('ix_quality_run_region_code'), 'quality_run', ['region_code'], unique=False)
    op.create_table('quality_issue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_key', sa.String(length=64), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('rule_code', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('state', sa.Enum('open', 'resolved', name='quality_issue_state', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('first_run_id', sa.Integer(), nullable=False),
    sa.Column('last_run_id', sa.Integer(), nullable=False),
    sa.Column('found_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_quality_issue_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_quality_issue_member_id_member'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['first_run_id'], ['quality_run.id'], name=op.f('fk_quality_issue_first_run_id_quality_run')),
    sa.ForeignKeyConstraint(['last_run_id'], ['quality_run.id'], name=op.f('fk_quality_issue_last_run_id_quality_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_issue')),
    sa.UniqueConstraint('issue_key', name=op.f('uq_quality_issue_issue_key'))
    )
    op.create_index(op.f('ix_quality_issue_household_id'), 'quality_issue', ['household_id'], unique=False)
    op.create_index(op.f('ix_quality_issue_village_code'), 'quality_issue', ['village_code'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_quality_issue_village_code'), table_name='quality_issue')
    op.drop_index(op.f('ix_quality_issue_household_id'), table_name='quality_issue')
    op.drop_table('quality_issue')
    op.drop_index(op.f('ix_quality_run_region_code'), table_name='quality_run')
    op.drop_table('quality_run')
