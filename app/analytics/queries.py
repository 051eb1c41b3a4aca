"""The current user's assistant replies as `MessageRecord`s, filtered in SQL (dates, tag, models).

Replies are the chat's (`ChatMessage`) and the OpenAI-compatible API's (`ApiRequest`); API requests have
no session and so no tag: a tag filter shows chat replies only. The source filter picks the chat, the API,
or the API answers to one of the user's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from flask_login import current_user

from app.analytics.metrics import MessageRecord
from app.extensions import db
from app.models import FINAL_MESSAGE_STATES, ApiRequest, ApiToken, ChatMessage, ChatSession, ChatSessionTag


@dataclass
class AnalyticsFilter:
    start: date
    end: date
    tag: str | None = None
    model_ids: list[int] = field(default_factory=list)
    source: str = ""  # "" (all), "chat", "api" or "token:<id>"

    @property
    def token_id(self) -> int | None:
        prefix, _, number = self.source.partition(":")
        return int(number) if prefix == "token" and number.isdecimal() and len(number) < 19 else None

    @property
    def wants_chat(self) -> bool:
        return self.source in ("", "chat")

    @property
    def wants_api(self) -> bool:
        return not self.tag and self.source != "chat"


def user_records(filters: AnalyticsFilter) -> list[MessageRecord]:
    """Every finished reply in the user's own sessions; another user's messages never match, nor an arena
    side's before its vote (its tokens and latency, filtered by model, would tell the sides apart)."""
    query = (
        sa.select(ChatMessage)
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(
            ChatSession.owner_id == current_user.id,
            ChatSession.blind_label.is_(None),  # an arena side counts once its vote has named its model
            ChatMessage.role == "assistant",
            ChatMessage.status.in_([str(s) for s in FINAL_MESSAGE_STATES]),
            ChatMessage.created_at >= datetime.combine(filters.start, time.min),
            ChatMessage.created_at < datetime.combine(filters.end + timedelta(days=1), time.min),
        )
        .order_by(ChatMessage.id)
    )
    if filters.tag:
        tagged = sa.select(ChatSessionTag.session_id).where(ChatSessionTag.tag == filters.tag)
        query = query.where(ChatMessage.session_id.in_(tagged))
    if filters.model_ids:
        query = query.where(ChatMessage.model_id.in_(filters.model_ids))
    records = []
    if filters.wants_chat:
        rows = db.session.execute(query).scalars()
        records = [_record(row, tool_calls=len(row.tool_calls or []), rating=row.rating) for row in rows]
    if filters.wants_api:
        records.extend(_api_records(filters))
        records.sort(key=lambda record: record.created_at)
    return records


def _api_records(filters: AnalyticsFilter) -> list[MessageRecord]:
    query = sa.select(ApiRequest).where(
        ApiRequest.owner_id == current_user.id,
        ApiRequest.created_at >= datetime.combine(filters.start, time.min),
        ApiRequest.created_at < datetime.combine(filters.end + timedelta(days=1), time.min),
    )
    if filters.model_ids:
        query = query.where(ApiRequest.model_id.in_(filters.model_ids))
    if filters.source.startswith("token:"):
        query = query.where(ApiRequest.token_id == filters.token_id)  # None (a garbled id) matches nothing
    rows = db.session.execute(query.order_by(ApiRequest.id)).scalars()
    return [_record(row, tool_calls=row.tool_calls) for row in rows]


def _record(message: ChatMessage | ApiRequest, tool_calls: int, rating: int | None = None) -> MessageRecord:
    """A chat reply or an API answer: both rows carry the same figures under the same names."""
    return MessageRecord(
        model_id=message.model_id,
        model_name=message.model_name or "(deleted model)",
        created_at=message.created_at,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        tokens_estimated=bool(message.tokens_estimated),
        latency_ms=message.latency_ms,
        ttft_ms=message.ttft_ms,
        tool_calls=tool_calls,
        tool_calls_valid=message.tool_calls_valid,
        constrained=message.constrained,
        status=message.status,
        rating=rating,
    )


def source_choices() -> list[tuple[str, str]]:
    """The source filter's options: everything, the chat, the API, and each of the user's API tokens."""
    tokens = db.session.execute(
        sa.select(ApiToken.id, ApiToken.name)
        .where(ApiToken.owner_id == current_user.id)
        .order_by(ApiToken.name)
    )
    choices = [("", "Chat and API"), ("chat", "Chat only"), ("api", "API only")]
    return choices + [(f"token:{token_id}", f"API token “{name}”") for token_id, name in tokens]


def models_with_messages() -> list[tuple[int, str]]:
    """(id, name) of every model the user has replies from, for the compare picker."""
    query = (
        sa.select(ChatMessage.model_id, sa.func.max(ChatMessage.model_name))
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(ChatSession.owner_id == current_user.id, ChatMessage.model_id.is_not(None))
        .where(ChatSession.blind_label.is_(None))
        .group_by(ChatMessage.model_id)
        .order_by(sa.func.max(ChatMessage.model_name))
    )
    names = {model_id: name or "" for model_id, name in db.session.execute(query)}
    from_api = (
        sa.select(ApiRequest.model_id, sa.func.max(ApiRequest.model_name))
        .where(ApiRequest.owner_id == current_user.id, ApiRequest.model_id.is_not(None))
        .group_by(ApiRequest.model_id)
    )
    for model_id, name in db.session.execute(from_api):
        names.setdefault(model_id, name or "")
    return sorted(names.items(), key=lambda item: item[1])
