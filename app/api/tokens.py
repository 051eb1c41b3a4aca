"""Issuing, finding and revoking API tokens. The plaintext exists once, in the response that creates it."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from app.extensions import db
from app.models import ApiRequest, ApiToken, User, utcnow

TOKEN_PREFIX = "ts_"
MAX_TOKENS_PER_USER = 20
LAST_USED_RESOLUTION_S = 60  # last_used_at is written at most once a minute per token


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_token(user_id: int, name: str) -> tuple[ApiToken, str]:
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(owner_id=user_id, name=name.strip()[:80] or "API token", token_hash=_digest(plaintext),
                     prefix=plaintext[:10])  # fmt: skip
    db.session.add(token)
    db.session.commit()
    return token, plaintext


def user_for_token(plaintext: str) -> tuple[User, ApiToken] | None:
    """The active user a bearer token belongs to; None for an unknown, revoked or disabled one."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = _digest(plaintext)
    token = db.session.execute(sa.select(ApiToken).where(ApiToken.token_hash == digest)).scalar_one_or_none()
    if token is None:  # looked up by its hash: timing reveals nothing about a token's characters
        return None
    user = db.session.get(User, token.owner_id)
    if user is None or user.is_disabled:
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
        token.last_used_at = now
        db.session.commit()
    return user, token


def tokens_of(user_id: int) -> list[ApiToken]:
    query = sa.select(ApiToken).where(ApiToken.owner_id == user_id).order_by(ApiToken.created_at.desc())
    return list(db.session.execute(query).scalars())


def request_counts(user_id: int) -> dict[int, int]:
    """Answers served per token (from the request log), for the account page."""
    query = (
        sa.select(ApiRequest.token_id, sa.func.count())
        .where(ApiRequest.owner_id == user_id, ApiRequest.token_id.is_not(None))
        .group_by(ApiRequest.token_id)
    )
    return {token_id: count for token_id, count in db.session.execute(query)}
