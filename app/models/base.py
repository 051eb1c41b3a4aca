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
