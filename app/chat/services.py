"""Chat sessions and turns: everything the routes do that is not HTTP."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask_login import current_user

from app.extensions import db
from app.json_input import loads as loads_json
from app.models import (
    ApiSpec,
    ChatMessage,
    ChatMode,
    ChatSession,
    ChatSessionTag,
    LLMModel,
    MessageStatus,
    utcnow,
)
from app.ownership import owned, visible

MAX_TAGS = 10
MAX_TAG_LENGTH = 40
MAX_MESSAGE_CHARS = 32_000
TOOL_NAME_CHARS = 64  # ChatMessage.tool_name
MAX_TOOLS_JSON_BYTES = 256 * 1024
_TAG_OK = re.compile(r"^[\w][\w .:+-]*$")


def usable_models() -> list[LLMModel]:
    """Enabled models the user can see, for the model pickers."""
    query = visible(LLMModel).where(LLMModel.enabled.is_(True)).order_by(LLMModel.name)
    return list(db.session.execute(query).scalars())


def usable_model(model_id: int | None) -> LLMModel | None:
    if model_id is None:
        return None
    query = visible(LLMModel).where(LLMModel.enabled.is_(True), LLMModel.id == model_id)
    return db.session.execute(query).scalar_one_or_none()


def user_specs() -> list[ApiSpec]:
    query = owned(ApiSpec).order_by(ApiSpec.name, ApiSpec.version_number.desc())
    return list(db.session.execute(query).scalars())


def owned_spec(spec_id: int | None) -> ApiSpec | None:
    if spec_id is None:
        return None
    return db.session.execute(owned(ApiSpec).where(ApiSpec.id == spec_id)).scalar_one_or_none()


def list_sessions(tag: str | None = None, search: str | None = None) -> list[ChatSession]:
    query = owned(ChatSession).order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
    if tag:
        query = query.where(
            ChatSession.id.in_(sa.select(ChatSessionTag.session_id).where(ChatSessionTag.tag == tag))
        )
    if search:  # the title or any message (replaced ones too: what was said is still worth finding)
        pattern = f"%{_escape_like(search)}%"
        in_messages = sa.select(ChatMessage.session_id).where(ChatMessage.content.ilike(pattern, escape="\\"))
        in_title = ChatSession.title.ilike(pattern, escape="\\")
        query = query.where(sa.or_(in_title, ChatSession.id.in_(in_messages)))
    return list(db.session.execute(query.limit(200)).scalars())


def user_tags() -> list[str]:
    """Every tag on the user's sessions, for the sidebar filter and analytics."""
    query = (
        sa.select(ChatSessionTag.tag)
        .join(ChatSession, ChatSession.id == ChatSessionTag.session_id)
        .where(ChatSession.owner_id == current_user.id)
        .distinct()
        .order_by(ChatSessionTag.tag)
    )
    return list(db.session.execute(query).scalars())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def create_session(model: LLMModel, mode: str, spec: ApiSpec | None) -> ChatSession:
    session = ChatSession(owner_id=current_user.id, model_id=model.id, mode=mode, max_tokens=model.max_tokens)
    if mode == ChatMode.API:
        session.spec_id = spec.id if spec else None
        session.title = f"API calls: {spec.label}" if spec else "API calls"
        session.temperature = 0.0  # one right request per prompt: greedy decoding
        session.tool_choice = "required"
    db.session.add(session)
    db.session.commit()
    return session


def parse_tags(text: str) -> tuple[list[str], str | None]:
    """Comma-separated tags, trimmed and lower-cased; an error message instead when one is unusable."""
    tags: list[str] = []
    for raw in (text or "").split(","):
        tag = raw.strip().lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH or not _TAG_OK.match(tag):
            return (
                [],
                f"“{tag[:MAX_TAG_LENGTH]}” is not a usable tag: letters, digits, space, . : + - _ only.",
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        return [], f"At most {MAX_TAGS} tags per session."
    return tags, None


def set_tags(session: ChatSession, tags: list[str]) -> None:
    session.tag_rows = [ChatSessionTag(tag=tag) for tag in tags]
    db.session.commit()


def delete_session(session: ChatSession) -> None:
    """Delete a session. One side of an arena battle not voted on yet: the battle can no longer be judged,
    so the other side stops hiding its model (only a vote would have revealed it)."""
    if session.blind_label:
        from app.models import ArenaBattle

        battles = db.session.execute(
            db.select(ArenaBattle).where(
                sa.or_(ArenaBattle.session_a_id == session.id, ArenaBattle.session_b_id == session.id)
            )
        ).scalars()
        for battle in battles:
            for side in (battle.session_a, battle.session_b):
                if side is not None and side.id != session.id:
                    side.blind_label = None
    db.session.delete(session)
    db.session.commit()


def attach_spec_tools(session: ChatSession, spec: ApiSpec) -> None:
    from app.openapi.normalise import NormalisedSpec
    from app.openapi.tools import spec_tools

    session.tools = spec_tools(NormalisedSpec.from_dict(spec.normalised))
    session.spec_id = spec.id
    db.session.commit()


def parse_pasted_tools(text: str) -> tuple[list[dict], list[str]]:
    """Pasted function definitions, validated; errors say where the problem is."""
    from app.serving.tool_schema import validate_tool_definitions

    if len(text.encode()) > MAX_TOOLS_JSON_BYTES:
        return [], [f"The tool definitions are larger than {MAX_TOOLS_JSON_BYTES // 1024} KB."]
    try:
        data = loads_json(text, text_only=True)
    except json.JSONDecodeError as exc:
        return [], [f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."]
    except ValueError as exc:
        return [], [f"Not valid JSON: {exc}."]
    tools, errors = validate_tool_definitions(data)
    if not tools and not errors:
        errors = ["No tool definitions found."]
    return tools, errors


def attach_pasted_tools(session: ChatSession, tools: list[dict]) -> None:
    session.tools = tools
    session.spec_id = None
    db.session.commit()


def remove_tools(session: ChatSession) -> None:
    session.tools = []
    if session.mode == ChatMode.CHAT:
        session.spec_id = None
    db.session.commit()


def session_messages(session: ChatSession) -> list[ChatMessage]:
    """The conversation as shown and sent to the model: replaced (regenerated) replies left out."""
    query = (
        sa.select(ChatMessage)
        .where(ChatMessage.session_id == session.id, ChatMessage.replaced.is_(False))
        .order_by(ChatMessage.id)
    )
    return list(db.session.execute(query).scalars())


def edit_last_prompt(session: ChatSession, message: ChatMessage, text: str) -> Turn | None:
    """Send `text` in place of the session's last user message: it and what followed are replaced (kept
    for Analytics, out of the conversation) and a new reply is generated.

    None when `message` is not the last user message or a reply after it is still being written.
    """
    messages = session_messages(session)
    users = [m for m in messages if m.role == "user"]
    if not users or users[-1].id != message.id:
        return None
    later = messages[messages.index(message) :]
    if any(m.role == "assistant" and not m.is_final for m in later) or not _claim_turn(session):
        return None
    for old in later:
        old.replaced = True
    return _with_pending_reply(session, ChatMessage(session_id=session.id, role="user", content=text))


def regenerate(session: ChatSession, message: ChatMessage) -> ChatMessage | None:
    """Replace the session's last reply with a new pending one from the session's current model.

    None when `message` is not the last, finished reply (a newer turn exists, or it is still streaming).
    """
    messages = session_messages(session)
    if not messages or messages[-1].id != message.id or message.role != "assistant" or not message.is_final:
        return None
    if not _claim_turn(session):
        return None
    message.replaced = True
    reply = _pending_reply(session)
    db.session.add(reply)
    db.session.commit()
    return reply


@dataclass
class Turn:
    """The rows one send creates: what the user said (or a tool result) and the pending reply (None
    for a tool result while other calls of the same turn still wait for theirs)."""

    prompt: ChatMessage
    reply: ChatMessage | None


def reply_in_progress(session: ChatSession) -> bool:
    """Whether a reply of the conversation is still to be written or being written: a message sent now
    would be answered beside it, from a history without it."""
    return any(m.role == "assistant" and not m.is_final for m in session_messages(session))


def add_user_turn(session: ChatSession, text: str) -> Turn | None:
    """Send `text`: the user's message and a pending reply to it.

    None when a reply is still being written, or another request (a second tab, a double submit, a
    regenerate or edit) changed the conversation since this one read it; nothing is stored then.
    """
    turns = add_user_turns([session], text)
    return turns[0] if turns else None


def add_user_turns(sessions: list[ChatSession], text: str) -> list[Turn] | None:
    """Send `text` to each session (a Compare or Arena follow-up goes to every model), all or none:
    None as for `add_user_turn` when any of them may not take it now."""
    for session in sessions:
        # A refused claim rolls back the ones before it: no session of the group gets the message.
        if reply_in_progress(session) or not _claim_turn(session):
            db.session.rollback()
            return None
    turns = []
    for session in sessions:
        if session.title in ("", "New chat"):
            session.title = _title_from(text)
        turn = Turn(ChatMessage(session_id=session.id, role="user", content=text), _pending_reply(session))
        db.session.add_all([turn.prompt, turn.reply])
        turns.append(turn)
    db.session.commit()
    return turns


def add_tool_result(
    session: ChatSession, call_message: ChatMessage, call_id: str, content: str
) -> Turn | None:
    """None when another request (a double submit, a second tab) changed the turn meanwhile."""
    if not _claim_turn(session):
        return None
    call = next((c for c in call_message.tool_calls or [] if c.get("id") == call_id), None)
    # A model's made-up name can be longer than the column (PostgreSQL refuses it outright).
    name = str(call.get("name") or "")[:TOOL_NAME_CHARS] if call else ""
    prompt = ChatMessage(
        session_id=session.id,
        role="tool",
        content=content,
        tool_call_id=call_id,
        tool_name=name or None,
    )
    if answerable_calls(session_messages(session)) - {call_id}:
        # The turn made several calls: the model answers once each has its result (OpenAI refuses a
        # request whose calls are not all answered, and a local model would go on without one).
        session.updated_at = utcnow()
        db.session.add(prompt)
        db.session.commit()
        return Turn(prompt=prompt, reply=None)
    return _with_pending_reply(session, prompt)


def _claim_turn(session: ChatSession) -> bool:
    """Whether this request may change the conversation's last turn (send, regenerate, edit, a tool result):
    a compare-and-set on the session's `updated_at` as this request read it, so of two tabs (or a double
    submit) acting on the same turn at once only the first goes ahead; the other's checks were made on a
    conversation that no longer is."""
    seen, now = session.updated_at, utcnow()
    claimed = db.session.execute(
        sa.update(ChatSession)
        .where(ChatSession.id == session.id, ChatSession.updated_at == seen)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    session.updated_at = now
    return True


def _with_pending_reply(session: ChatSession, prompt: ChatMessage) -> Turn:
    reply = _pending_reply(session)
    db.session.add_all([prompt, reply])
    db.session.commit()
    return Turn(prompt=prompt, reply=reply)


def _pending_reply(session: ChatSession) -> ChatMessage:
    """A reply from the session's current model, to be generated when the page opens its stream."""
    model = session.model
    session.updated_at = utcnow()
    return ChatMessage(
        session_id=session.id,
        role="assistant",
        status=MessageStatus.PENDING,
        model_id=model.id if model else None,
        model_name=model.name if model else None,
    )


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return (line[:57] + "…") if len(line) > 60 else (line or "New chat")


def request_stop(message: ChatMessage) -> None:
    """Ask the generation to stop; the streaming request polls this flag (any process, any host)."""
    if not message.is_final:
        message.stop_requested = True
        db.session.commit()


def answerable_calls(messages: list[ChatMessage]) -> set[str]:
    """Tool-call ids of the last assistant turn that have no result yet: where the result form shows."""
    last = next((m for m in reversed(messages) if m.role == "assistant"), None)
    if last is None or not last.tool_calls or not last.is_final:
        return set()
    later = messages[messages.index(last) + 1 :]
    if any(m.role == "user" for m in later):
        return set()
    answered = {m.tool_call_id for m in later if m.role == "tool"}
    return {
        c["id"] for c in last.tool_calls if c.get("id") and c["id"] not in answered and not c.get("unparsed")
    }
