"""User administration rules."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import User


class AdminActionError(Exception):
    """A user-facing reason an admin action was refused."""


def set_disabled(actor: User, target: User, disabled: bool) -> None:
    """Disable or enable an account. Disabling ends every session it has (they do not come back when
    it is enabled again); the last active admin cannot be disabled."""
    if actor.id == target.id:
        raise AdminActionError(
            "You cannot disable your own account." if disabled else "Your own account is enabled already."
        )
    if disabled:
        target.rotate_session_token()
        if target.is_admin:
            _change_admin_keeping_another(target, is_disabled=True)
    target.is_disabled = disabled
    db.session.commit()


def set_admin(actor: User, target: User, is_admin: bool) -> None:
    """Grant or revoke admin rights; the last active admin cannot be demoted."""
    if actor.id == target.id and not is_admin:
        raise AdminActionError("You cannot remove your own admin rights.")
    if not is_admin and target.is_admin and not target.is_disabled:
        _change_admin_keeping_another(target, is_admin=False)
    target.is_admin = is_admin
    db.session.commit()


def _change_admin_keeping_another(target: User, **values: bool) -> None:
    """Demote or disable an active admin in one statement that only applies while another active admin
    remains: two admins demoting each other at the same moment must not leave none (a count read
    before a separate write would let both through)."""
    active_admins = (User.is_admin.is_(True), User.is_disabled.is_(False))
    # PostgreSQL: lock the active admins' rows first, so a concurrent demotion waits for this one and
    # then counts again. (SQLite runs one write at a time; the count below is inside that write.)
    db.session.execute(sa.select(User.id).where(*active_admins).with_for_update())
    others = sa.select(sa.func.count(User.id)).where(*active_admins, User.id != target.id).scalar_subquery()
    changed = db.session.execute(sa.update(User).where(User.id == target.id, others >= 1).values(**values))
    if changed.rowcount != 1:
        db.session.rollback()
        raise AdminActionError("Toolsmith needs at least one active admin.")
