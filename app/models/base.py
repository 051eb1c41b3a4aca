"""Shared column helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


def utcnow() -> datetime:
    """Naive UTC timestamp: SQLite drops time zones, so every stored time is UTC without one."""
    return datetime.now(UTC).replace(tzinfo=None)


class OwnedMixin:
    """A row that belongs to one user; `owner_id` NULL marks a global, admin-managed row.

    Load such rows only through `app.ownership`, which enforces per-user isolation in one place.
    """

    @declared_attr
    def owner_id(cls) -> Mapped[int | None]:  # noqa: N805
        return mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True)


@sa.event.listens_for(sa.orm.Session, "before_flush")
def _drop_nul_characters(session, flush_context, instances) -> None:
    """PostgreSQL text cannot hold a NUL (0x00) character, SQLite can: a pasted or uploaded one would be
    a 500 on one database and stored on the other. Dropped from every text column on the way in, so
    both behave alike."""
    for row in (*session.new, *session.dirty):
        for attribute in sa.inspect(row).mapper.column_attrs:
            if not isinstance(attribute.columns[0].type, sa.String):  # sa.Text is a String too
                continue
            value = getattr(row, attribute.key)
            if isinstance(value, str) and "\x00" in value:
                setattr(row, attribute.key, value.replace("\x00", ""))
