"""Chat playground: sessions, their tags, and messages with the figures analytics reads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class ChatMode(StrEnum):
    CHAT = "chat"
    API = "api"  # natural language → HTTP request checked against a spec


class MessageStatus(StrEnum):
    PENDING = "pending"  # stored, generation not started (the stream request starts it)
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"  # the user pressed stop or left: the partial answer is kept
    ERROR = "error"


FINAL_MESSAGE_STATES = (MessageStatus.COMPLETE, MessageStatus.STOPPED, MessageStatus.ERROR)


class ChatSession(OwnedMixin, db.Model):
    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120), default="New chat")
    mode: Mapped[str] = mapped_column(sa.String(16), default=ChatMode.CHAT)
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("llm_models.id", ondelete="SET NULL"))
    system_prompt: Mapped[str] = mapped_column(sa.Text, default="")
    temperature: Mapped[float] = mapped_column(default=0.7)
    top_p: Mapped[float] = mapped_column(default=0.95)
    max_tokens: Mapped[int] = mapped_column(default=512)
    stop_sequences: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    presence_penalty: Mapped[float] = mapped_column(default=0.0)
    frequency_penalty: Mapped[float] = mapped_column(default=0.0)
    # Tools offered to the model, in the OpenAI function shape; from a spec's operations or pasted JSON.
    tools: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    spec_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_specs.id", ondelete="SET NULL"))
    constrained: Mapped[bool] = mapped_column(default=True)
    tool_choice: Mapped[str] = mapped_column(sa.String(16), default="auto")
    # An arena session before its vote: the label ("Model A") every page shows instead of the model.
    blind_label: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    model = relationship("LLMModel", lazy="joined")
    spec = relationship("ApiSpec", lazy="select")
    tag_rows = relationship(
        "ChatSessionTag", cascade="all, delete-orphan", lazy="selectin", order_by="ChatSessionTag.tag"
    )
    messages = relationship(
        "ChatMessage",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="ChatMessage.id",
        back_populates="session",
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class ChatSessionTag(db.Model):
    __tablename__ = "chat_session_tags"
    __table_args__ = (sa.UniqueConstraint("session_id", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(sa.String(40), index=True)


class ChatMessage(db.Model):
    """One turn. Assistant turns carry the model, token counts, timings and checked tool calls."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))  # user | assistant | tool
    content: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default=MessageStatus.COMPLETE)
    error: Mapped[str | None] = mapped_column(sa.Text)
    stop_requested: Mapped[bool] = mapped_column(default=False)
    # Regenerate: the old reply stays (Analytics counts it) but leaves the conversation and the prompt.
    replaced: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Why generation ended: "stop", "length" (cut at max tokens), "tool_calls", "stopped" (the button), …
    finish_reason: Mapped[str | None] = mapped_column(sa.String(16))
    # The user's verdict on a reply: 1 good, -1 bad, None not rated (Analytics shows it per model).
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)

    model_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("llm_models.id", ondelete="SET NULL"), index=True
    )
    model_name: Mapped[str | None] = mapped_column(sa.String(120))  # kept when the model is deleted
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    tokens_estimated: Mapped[bool] = mapped_column(default=False)
    latency_ms: Mapped[float | None]
    ttft_ms: Mapped[float | None]

    # [{"id", "name", "arguments", "issues": [{"kind", "path", "message"}]}]
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    tool_calls_valid: Mapped[bool | None]
    constrained: Mapped[bool | None]
    # A tool result answers one call of the assistant turn before it.
    tool_call_id: Mapped[str | None] = mapped_column(sa.String(64))
    tool_name: Mapped[str | None] = mapped_column(sa.String(64))
    # NL → API mode: the HTTP request the call stands for and the per-check results.
    api_request: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    api_request_valid: Mapped[bool | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # When a request took the pending reply and began generating; refreshed while it writes (a heartbeat).
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    session = relationship("ChatSession", back_populates="messages")

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_MESSAGE_STATES
