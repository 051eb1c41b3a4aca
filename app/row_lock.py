"""Hold one row until the transaction commits, on PostgreSQL and SQLite alike.

A request that reads, decides and writes (count the user's tokens, then add one; read a dataset's file,
then rewrite it) must not interleave with another doing the same. PostgreSQL has `SELECT … FOR
UPDATE`. SQLite ignores it: its reads take no lock (pysqlite opens the transaction at the first write),
so two requests read the same state. An UPDATE that changes nothing takes SQLite's one write lock
instead; a second request then waits there (the busy timeout) and reads after the first commits.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db


def lock_row(model: type, row_id: int) -> None:
    """Lock `model`'s row `row_id` until the session commits or rolls back."""
    table = model.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.update(table).where(table.c.id == row_id).values(id=table.c.id))
    else:
        db.session.execute(sa.select(table.c.id).where(table.c.id == row_id).with_for_update())
