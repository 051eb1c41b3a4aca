"""API tokens for the OpenAI-compatible API (`/v1`; only a SHA-256 of each is stored) and its request log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class ApiToken(OwnedMixin, db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    # A token is 32 random bytes: a fast hash is enough (nothing to brute-force), and lookups stay O(1).
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in the list, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    def __repr__(self) -> str:  # never the hash
        return f"<ApiToken {self.id} {self.prefix}…>"


class ApiRequest(OwnedMixin, db.Model):
    """One `/v1/chat/completions` answer, with the figures the Analytics page shows for chat replies."""

    __tablename__ = "api_requests"
    __table_args__ = (sa.Index("ix_api_requests_owner_created", "owner_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_tokens.id", ondelete="SET NULL"))
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("llm_models.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(sa.String(120))
    status: Mapped[str] = mapped_column(sa.String(16))  # complete | stopped (client left) | error
    streamed: Mapped[bool] = mapped_column(default=False)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    tokens_estimated: Mapped[bool] = mapped_column(default=False)
    latency_ms: Mapped[float | None]
    ttft_ms: Mapped[float | None]
    tool_calls: Mapped[int] = mapped_column(default=0)
    tool_calls_valid: Mapped[bool | None]
    constrained: Mapped[bool | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
