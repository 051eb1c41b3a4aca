"""A chat reply keeps why its generation ended, so a reply cut at max tokens can say so.

Revision ID: d0e2f4a6b8c1
Revises: c9d1e3f5a7b9
Create Date: 2026-11-24 12:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd0e2f4a6b8c1'
down_revision = 'c9d1e3f5a7b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('finish_reason', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_column('finish_reason')
