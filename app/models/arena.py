"""Arena battles: one prompt, two models drawn at random and shown as "Model A" / "Model B" until the
user votes. The votes rank the user's models (Bradley–Terry ratings) and become preference pairs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class Verdict(StrEnum):
    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"  # a tie for the ratings, kept apart because it says something else


class ArenaBattle(OwnedMixin, db.Model):
    __tablename__ = "arena_battles"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id in the battle's address and in its sessions' `arena:<group>` tag.
    group: Mapped[str] = mapped_column(sa.String(8), unique=True)
    prompt: Mapped[str] = mapped_column(sa.String(200), default="")  # the first prompt, cut, for lists
    # Names are copied: a vote keeps counting for the leaderboard after a model or a session is deleted.
    model_a_id: Mapped[int | None] = mapped_column(sa.ForeignKey("llm_models.id", ondelete="SET NULL"))
    model_b_id: Mapped[int | None] = mapped_column(sa.ForeignKey("llm_models.id", ondelete="SET NULL"))
    model_a_name: Mapped[str] = mapped_column(sa.String(120))
    model_b_name: Mapped[str] = mapped_column(sa.String(120))
    session_a_id: Mapped[int | None] = mapped_column(sa.ForeignKey("chat_sessions.id", ondelete="SET NULL"))
    session_b_id: Mapped[int | None] = mapped_column(sa.ForeignKey("chat_sessions.id", ondelete="SET NULL"))
    verdict: Mapped[str | None] = mapped_column(sa.String(12))  # None until the user votes
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    voted_at: Mapped[datetime | None]

    session_a = relationship("ChatSession", foreign_keys=[session_a_id], lazy="select")
    session_b = relationship("ChatSession", foreign_keys=[session_b_id], lazy="select")

    @property
    def voted(self) -> bool:
        return self.verdict is not None
