"""User accounts."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    """A person who signs in. The first account created is the admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_disabled: Mapped[bool] = mapped_column(default=False)
    # Part of the login cookie's user id: rotating it (password change) signs out every other session.
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # A Hugging Face token for pushing trained models to the Hub; encrypted, never shown again.
    hub_token_encrypted: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def is_active(self) -> bool:  # flask-login refuses to log in inactive users
        return not self.is_disabled

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def rotate_session_token(self) -> None:
        self.session_token = new_session_token()

    @property
    def has_hub_token(self) -> bool:
        return bool(self.hub_token_encrypted)

    def set_hub_token(self, plaintext: str | None) -> None:
        from app.crypto import encrypt_secret

        self.hub_token_encrypted = encrypt_secret(plaintext) if plaintext else None

    def hub_token(self) -> str | None:
        """The decrypted token, for the export job only: never pass it to a template or a log."""
        from app.crypto import decrypt_secret

        return decrypt_secret(self.hub_token_encrypted) if self.hub_token_encrypted else None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"
