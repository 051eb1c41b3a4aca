"""Arena battles (blind two-model votes) and the label an arena session shows until its vote.

Revision ID: a3c5e7f9b1d4
Revises: f2a4b6c8d0e3
Create Date: 2026-11-24 19:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c5e7f9b1d4'
down_revision = 'f2a4b6c8d0e3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'arena_battles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group', sa.String(length=8), nullable=False),
        sa.Column('prompt', sa.String(length=200), nullable=False),
        sa.Column('model_a_id', sa.Integer(), nullable=True),
        sa.Column('model_b_id', sa.Integer(), nullable=True),
        sa.Column('model_a_name', sa.String(length=120), nullable=False),
        sa.Column('model_b_name', sa.String(length=120), nullable=False),
        sa.Column('session_a_id', sa.Integer(), nullable=True),
        sa.Column('session_b_id', sa.Integer(), nullable=True),
        sa.Column('verdict', sa.String(length=12), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('voted_at', sa.DateTime(), nullable=True),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['model_a_id'], ['llm_models.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['model_b_id'], ['llm_models.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['session_a_id'], ['chat_sessions.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['session_b_id'], ['chat_sessions.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group'),
    )
    with op.batch_alter_table('arena_battles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arena_battles_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_arena_battles_owner_id'), ['owner_id'], unique=False)

    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blind_label', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_column('blind_label')

    with op.batch_alter_table('arena_battles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_arena_battles_owner_id'))
        batch_op.drop_index(batch_op.f('ix_arena_battles_created_at'))

    op.drop_table('arena_battles')
