"""Account logic that is not HTTP."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.extensions import db
from app.models import ApiToken, User, utcnow
from app.row_lock import lock_row


class AccountError(Exception):
    """A user-facing reason an account action was refused."""


def registration_allowed(open_registration: bool) -> bool:
    """Sign-up is open, or nobody has registered yet (the first account must always be possible)."""
    return open_registration or db.session.execute(sa.select(User.id).limit(1)).first() is None


class RegistrationClosed(AccountError):
    """Sign-up is closed and the first account exists (it may have been created a moment ago)."""


def create_account(email: str, password: str, *, open_registration: bool = True) -> User:
    """Create an account; the very first one becomes the admin (with sign-up closed, the only one)."""
    password_hash = hash_password(password)  # slow (Argon2): done before the serialised step below
    _lock_users_table()
    # "Nobody yet" is decided inside the INSERT, so two first registrations at once cannot both see an
    # empty table (SQLite runs one write at a time; PostgreSQL waits on the lock above).
    nobody_yet = ~sa.exists(sa.select(User.id))
    row = sa.select(sa.literal(email), sa.literal(password_hash), nobody_yet)
    if not open_registration:
        row = row.where(nobody_yet)
    # The columns' defaults (session token, created_at) are filled in as for any insert.
    insert = sa.insert(User).from_select(["email", "password_hash", "is_admin"], row).returning(User.id)
    try:
        user_id = db.session.execute(insert).scalar_one_or_none()
        db.session.commit()
    except IntegrityError as exc:  # two registrations racing for one email
        db.session.rollback()
        raise AccountError("An account with this email already exists.") from exc
    if user_id is None:
        raise RegistrationClosed("Registration is closed: this Toolsmith does not accept new accounts.")
    return db.session.get_one(User, user_id)


def _lock_users_table() -> None:
    """PostgreSQL: one account insert at a time until the commit, so the next one sees this one's row (with
    no row to lock yet, a row lock cannot do this). Reads go on; SQLite needs nothing (one writer)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, or None. For an active account, records the sign-in and
    upgrades a weaker stored hash; a disabled one (refused by `login_user`) is left as it was."""
    user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()
    if not verify_password(user.password_hash if user else None, password):
        return None
    if not user.is_active:
        return user
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def issue_api_token(user_id: int, name: str) -> str:
    """A new API token for the user (its plaintext, shown once); refused at MAX_TOKENS_PER_USER."""
    from app.api.tokens import MAX_TOKENS_PER_USER, issue_token

    lock_row(User, user_id)  # two requests at once: the second counts after the first one's token is in
    count = db.session.execute(
        sa.select(sa.func.count(ApiToken.id)).where(ApiToken.owner_id == user_id)
    ).scalar_one()
    if count >= MAX_TOKENS_PER_USER:
        db.session.rollback()
        raise AccountError(f"You have {MAX_TOKENS_PER_USER} tokens already; revoke one first.")
    _, plaintext = issue_token(user_id, name)  # commits, which releases the lock
    return plaintext


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
