"""Account logic that is not HTTP."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.extensions import db
from app.models import User, utcnow


class AccountError(Exception):
    """A user-facing reason an account action was refused."""


def registration_allowed(open_registration: bool) -> bool:
    """Sign-up is open, or nobody has registered yet (the first account must always be possible)."""
    return open_registration or db.session.execute(sa.select(User.id).limit(1)).first() is None


def create_account(email: str, password: str) -> User:
    """Create an account; the very first one becomes the admin."""
    is_first = db.session.execute(sa.select(User.id).limit(1)).first() is None
    user = User(email=email, password_hash=hash_password(password), is_admin=is_first)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # two registrations racing for one email
        db.session.rollback()
        raise AccountError("An account with this email already exists.") from exc
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, or None. Upgrades a weaker stored hash."""
    user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()
    if not verify_password(user.password_hash if user else None, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise AccountError("The current password is not correct.")
    user.password_hash = hash_password(new_password)
    user.rotate_session_token()
    db.session.commit()


def load_user_from_session(session_id: str) -> User | None:
    """flask-login's loader: the cookie holds "<id>:<session token>"; disabled accounts load as nobody."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.is_disabled or user.session_token != token:
        return None
    return user
