"""A chat session's stop sequences and frequency / presence penalties.

Revision ID: c5e7a9b1d3f6
Revises: b4d6f8a0c2e5
Create Date: 2026-11-25 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5e7a9b1d3f6'
down_revision = 'b4d6f8a0c2e5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stop_sequences', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('presence_penalty', sa.Double(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('frequency_penalty', sa.Double(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_column('frequency_penalty')
        batch_op.drop_column('presence_penalty')
        batch_op.drop_column('stop_sequences')
