"""Early stopping: a training run records the step whose weights it kept and whether it stopped early.

Revision ID: c9d1e3f5a7b9
Revises: b8c0d2e4f6a8
Create Date: 2026-11-24 12:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c9d1e3f5a7b9'
down_revision = 'b8c0d2e4f6a8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('best_step', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('best_eval_loss', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('stopped_early', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_column('stopped_early')
        batch_op.drop_column('best_eval_loss')
        batch_op.drop_column('best_step')
