"""A registered model's training run is a foreign key: a deleted run can never leave a dangling id that a
later run given the same id would adopt.

Revision ID: d6f8b0c2e4a7
Revises: c5e7a9b1d3f6
Create Date: 2026-11-25 04:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd6f8b0c2e4a7'
down_revision = 'c5e7a9b1d3f6'
branch_labels = None
depends_on = None

CONSTRAINT = 'fk_llm_models_training_run_id_training_runs'


def upgrade():
    # Ids of runs deleted before the key existed would make the constraint fail on PostgreSQL.
    op.execute(
        'UPDATE llm_models SET training_run_id = NULL WHERE training_run_id IS NOT NULL '
        'AND training_run_id NOT IN (SELECT id FROM training_runs)'
    )
    with op.batch_alter_table('llm_models', schema=None) as batch_op:
        batch_op.create_foreign_key(
            CONSTRAINT, 'training_runs', ['training_run_id'], ['id'], ondelete='SET NULL'
        )


def downgrade():
    with op.batch_alter_table('llm_models', schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_='foreignkey')
