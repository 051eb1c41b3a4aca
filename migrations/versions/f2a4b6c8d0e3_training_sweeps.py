"""Training sweeps: several runs of one config with other hyper-parameter values, grouped.

Revision ID: f2a4b6c8d0e3
Revises: e1f3a5b7c9d2
Create Date: 2026-11-24 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2a4b6c8d0e3'
down_revision = 'e1f3a5b7c9d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'training_sweeps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=160), nullable=False),
        sa.Column('config_id', sa.Integer(), nullable=True),
        sa.Column('config_name', sa.String(length=120), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=True),
        sa.Column('dataset_name', sa.String(length=120), nullable=False),
        sa.Column('axes', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['config_id'], ['training_configs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('training_sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_sweeps_owner_id'), ['owner_id'], unique=False)

    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sweep_point', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.create_index(batch_op.f('ix_training_runs_sweep_id'), ['sweep_id'], unique=False)
        batch_op.create_foreign_key(
            'fk_training_runs_sweep_id_training_sweeps', 'training_sweeps', ['sweep_id'], ['id'],
            ondelete='SET NULL',
        )
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.alter_column('sweep_point', server_default=None)


def downgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_training_runs_sweep_id_training_sweeps', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_training_runs_sweep_id'))
        batch_op.drop_column('sweep_point')
        batch_op.drop_column('sweep_id')

    with op.batch_alter_table('training_sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_sweeps_owner_id'))

    op.drop_table('training_sweeps')
