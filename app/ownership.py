"""Per-user isolation, enforced in one place.

Every view loads user-owned rows through these helpers. Another user's row is indistinguishable
from a missing one (404, never 403), so ids cannot be probed.
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from app.extensions import db
from app.models.base import OwnedMixin

OwnedT = TypeVar("OwnedT", bound=OwnedMixin)
MAX_ROW_ID = 2**31 - 1  # the largest id an INTEGER column holds on PostgreSQL (SQLite's are wider)


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: only ids a database column can hold, so `/chat/99999999999999999999`
    is a 404 like any other missing row rather than an OverflowError from the driver."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def owned(model: type[OwnedT]) -> sa.Select:
    """Rows the current user owns."""
    return sa.select(model).where(model.owner_id == current_user.id)


def visible(model: type[OwnedT]) -> sa.Select:
    """Rows the current user may read: their own plus global (owner-less) ones."""
    return visible_to(model, current_user.id)


def visible_to(model: type[OwnedT], user_id: int) -> sa.Select:
    """Rows a given user may read (the API authenticates by token, not by the signed-in session)."""
    return sa.select(model).where(sa.or_(model.owner_id == user_id, model.owner_id.is_(None)))


def manageable(model: type[OwnedT]) -> sa.Select:
    """Rows the current user may change: their own, plus global ones for admins."""
    if current_user.is_admin:
        return visible(model)
    return owned(model)


def _one_or_404(query: sa.Select, model: type[OwnedT], object_id: int) -> OwnedT:
    row = db.session.execute(query.where(model.id == object_id)).scalar_one_or_none()
    if row is None:
        abort(404)
    return row


def owned_or_none(model: type[OwnedT], object_id: int | None) -> OwnedT | None:
    """The user's own row, or None for another user's, a missing one, or a number no row can have (a
    link's query argument: past MAX_ROW_ID the database refuses the number rather than finding nothing)."""
    if object_id is None or not 0 < object_id <= MAX_ROW_ID:
        return None
    return db.session.execute(owned(model).where(model.id == object_id)).scalar_one_or_none()


def get_owned_or_404(model: type[OwnedT], object_id: int) -> OwnedT:
    return _one_or_404(owned(model), model, object_id)


def get_visible_or_404(model: type[OwnedT], object_id: int) -> OwnedT:
    return _one_or_404(visible(model), model, object_id)


def get_manageable_or_404(model: type[OwnedT], object_id: int) -> OwnedT:
    return _one_or_404(manageable(model), model, object_id)


def get_owned_child_or_404(child: type, child_id: int, parent: type[OwnedT], parent_key) -> object:
    """A row reached through its owned parent (a chat message through its session): same 404 rule."""
    query = (
        sa.select(child)
        .join(parent, parent.id == parent_key)
        .where(child.id == child_id, parent.owner_id == current_user.id)
    )
    row = db.session.execute(query).scalar_one_or_none()
    if row is None:
        abort(404)
    return row
