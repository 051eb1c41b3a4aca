"""User administration rules."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import User


class AdminActionError(Exception):
    """A user-facing reason an admin action was refused."""


def _active_admin_count() -> int:
    return db.session.execute(
        sa.select(sa.func.count(User.id)).where(User.is_admin.is_(True), User.is_disabled.is_(False))
    ).scalar_one()


def set_disabled(actor: User, target: User, disabled: bool) -> None:
    """Disable or enable an account; a disabled user is signed out on their next request."""
    if actor.id == target.id:
        raise AdminActionError("You cannot disable your own account.")
    target.is_disabled = disabled
    db.session.commit()


def set_admin(actor: User, target: User, is_admin: bool) -> None:
    """Grant or revoke admin rights; the last active admin cannot be demoted."""
    if actor.id == target.id and not is_admin:
        raise AdminActionError("You cannot remove your own admin rights.")
    if not is_admin and target.is_admin and not target.is_disabled and _active_admin_count() <= 1:
        raise AdminActionError("Toolsmith needs at least one active admin.")
    target.is_admin = is_admin
    db.session.commit()
