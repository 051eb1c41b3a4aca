"""A chat reply can be replaced by a regenerated one (kept for Analytics, hidden from the conversation).

Revision ID: a7b9c1d3e5f7
Revises: f1c3d5e7a902
Create Date: 2026-11-24 08:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7b9c1d3e5f7'
down_revision = 'f1c3d5e7a902'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaced', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_column('replaced')
