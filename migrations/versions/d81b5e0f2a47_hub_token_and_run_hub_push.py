"""A user's Hugging Face token (encrypted) and a run's Hub push outcome.

Revision ID: d81b5e0f2a47
Revises: c406f9d863c1
Create Date: 2026-11-23 23:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d81b5e0f2a47"
down_revision = "c406f9d863c1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hub_token_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        # Existing runs never pushed: an empty object, then the column is NOT NULL like the model says.
        batch_op.add_column(sa.Column("hub_push", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.alter_column("hub_push", server_default=None)


def downgrade():
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_column("hub_push")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("hub_token_encrypted")
