"""duplicates: candidate pairs, matches, merge records; household.merged_into_id;
member.id_number_hash indexed instead of unique

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_STATES = ('pending', 'distinct', 'merged', 'superseded')


def upgrade() -> None:
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_household_merged_into_id'), ['merged_into_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_household_merged_into_id_household'),
                                    'household', ['merged_into_id'], ['id'])
    # The same ID number in two households must be storable to be found and adjudicated.
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_member_id_number_hash'), type_='unique')
        batch_op.create_index(batch_op.f('ix_member_id_number_hash'), ['id_number_hash'], unique=False)
        batch_op.create_index('ix_member_name_birth_date', ['name', 'birth_date', 'household_id'], unique=False)

    op.create_table('duplicate_candidate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_a_id', sa.Integer(), nullable=False),
    sa.Column('household_b_id', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.Integer(), nullable=False),
    sa.Column('decided_reasons', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum(*_STATES, name='duplicate_state', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('found_by', sa.String(length=64), nullable=False),
    sa.Column('found_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['household_a_id'], ['household.id'], name=op.f('fk_duplicate_candidate_household_a_id_household')),
    sa.ForeignKeyConstraint(['household_b_id'], ['household.id'], name=op.f('fk_duplicate_candidate_household_b_id_household')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidate')),
    sa.UniqueConstraint('household_a_id', 'household_b_id', name=op.f('uq_duplicate_candidate_household_a_id'))
    )
    with op.batch_alter_table('duplicate_candidate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_candidate_household_a_id'), ['household_a_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidate_household_b_id'), ['household_b_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_candidate_state'), ['state'], unique=False)

    op.create_table('duplicate_match',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Integer(), nullable=False),
    sa.Column('member_a_id', sa.Integer(), nullable=True),
    sa.Column('member_b_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['candidate_id'], ['duplicate_candidate.id'], name=op.f('fk_duplicate_match_candidate_id_duplicate_candidate')),
    sa.ForeignKeyConstraint(['member_a_id'], ['member.id'], name=op.f('fk_duplicate_match_member_a_id_member')),
    sa.ForeignKeyConstraint(['member_b_id'], ['member.id'], name=op.f('fk_duplicate_match_member_b_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_match'))
    )
    with op.batch_alter_table('duplicate_match', schema=None) as batch_op:
        batch_op.create_index('ix_duplicate_match_candidate', ['candidate_id', 'reason'], unique=False)

    op.create_table('household_merge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survivor_id', sa.Integer(), nullable=False),
    sa.Column('merged_id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=True),
    sa.Column('decided_by', sa.String(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['duplicate_candidate.id'], name=op.f('fk_household_merge_candidate_id_duplicate_candidate')),
    sa.ForeignKeyConstraint(['merged_id'], ['household.id'], name=op.f('fk_household_merge_merged_id_household')),
    sa.ForeignKeyConstraint(['survivor_id'], ['household.id'], name=op.f('fk_household_merge_survivor_id_household')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_merge')),
    sa.UniqueConstraint('merged_id', name=op.f('uq_household_merge_merged_id'))
    )
    with op.batch_alter_table('household_merge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_merge_survivor_id'), ['survivor_id'], unique=False)


def downgrade() -> None:
    op.drop_table('household_merge')
    op.drop_table('duplicate_match')
    op.drop_table('duplicate_candidate')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_index('ix_member_name_birth_date')
        batch_op.drop_index(batch_op.f('ix_member_id_number_hash'))
        batch_op.create_unique_constraint(batch_op.f('uq_member_id_number_hash'), ['id_number_hash'])
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_household_merged_into_id_household'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_household_merged_into_id'))
        batch_op.drop_column('merged_into_id')
