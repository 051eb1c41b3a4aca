"""Two requests acting on the same turn at once (two tabs, a double submit): regenerate, edit and a tool
result each check the conversation, then change it; only the first of two goes ahead. Also a HEAD on a
reply's stream, which must not claim the reply it will never write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.chat import services
from app.extensions import db
from app.models import ChatMessage, ChatSession, MessageStatus, utcnow

LONG_NAME = "lookup_" + "x" * 100  # a model's made-up name, longer than the column


@pytest.fixture
def answered_turn(app, signed_in, default_model_id):
    """(client, session id, user message id, reply id): a finished reply that made one call."""
    client, user = signed_in()
    with app.app_context():
        chat = ChatSession(owner_id=user.id, model_id=default_model_id, title="races")
        db.session.add(chat)
        db.session.flush()
        prompt = ChatMessage(session_id=chat.id, role="user", content="Look it up")
        call = {"id": "call_1", "name": LONG_NAME, "arguments": {}, "issues": []}
        reply = ChatMessage(
            session_id=chat.id,
            role="assistant",
            content="",
            status=MessageStatus.COMPLETE,
            tool_calls=[call],
            finished_at=utcnow(),
        )
        db.session.add_all([prompt, reply])
        db.session.commit()
        return client, chat.id, prompt.id, reply.id


def _another_request_changes_the_turn(session_id: int) -> None:
    """What a second tab's regenerate or send commits while this request is between its check and write:
    on its own connection, so this request's session still holds the conversation as it read it."""
    with db.engine.begin() as connection:
        connection.execute(
            db.update(ChatSession)
            .where(ChatSession.id == session_id)
            .values(updated_at=utcnow() + timedelta(seconds=1))
        )


def _replies(session_id: int) -> int:
    query = db.select(db.func.count(ChatMessage.id)).where(
        ChatMessage.session_id == session_id, ChatMessage.status == MessageStatus.PENDING
    )
    return db.session.execute(query).scalar()


@pytest.mark.parametrize("action", ["regenerate", "edit", "tool_result"])
def test_of_two_requests_on_one_turn_only_the_first_goes_ahead(app, answered_turn, action):
    client, session_id, prompt_id, reply_id = answered_turn
    with app.test_request_context():
        chat = db.session.get(ChatSession, session_id)
        prompt, reply = db.session.get(ChatMessage, prompt_id), db.session.get(ChatMessage, reply_id)
        services.session_messages(chat)  # this request read the conversation…
        _another_request_changes_the_turn(session_id)  # …and another changed it before this one wrote
        if action == "regenerate":
            outcome = services.regenerate(chat, reply)
        elif action == "edit":
            outcome = services.edit_last_prompt(chat, prompt, "Look it up again")
        else:
            outcome = services.add_tool_result(chat, reply, "call_1", '{"found": true}')
        assert outcome is None
        db.session.expire_all()
        assert _replies(session_id) == 0
        assert not db.session.get(ChatMessage, reply_id).replaced
        # The same request with a fresh read goes ahead.
        chat = db.session.get(ChatSession, session_id)
        if action == "regenerate":
            assert services.regenerate(chat, db.session.get(ChatMessage, reply_id)) is not None
        elif action == "edit":
            prompt = db.session.get(ChatMessage, prompt_id)
            assert services.edit_last_prompt(chat, prompt, "Again") is not None
        else:
            turn = services.add_tool_result(chat, db.session.get(ChatMessage, reply_id), "call_1", "{}")
            assert turn is not None and turn.prompt.tool_name == LONG_NAME[:64]
        assert _replies(session_id) == 1


def test_a_double_submitted_tool_result_through_the_page_is_stored_once(app, answered_turn):
    from tests.chat.conftest import htmx_post

    client, session_id, prompt_id, reply_id = answered_turn
    path = f"/chat/{session_id}/messages/{reply_id}/tool-result"
    first = htmx_post(client, path, {"call_id": "call_1", "content": '{"found": true}'})
    second = htmx_post(client, path, {"call_id": "call_1", "content": '{"found": true}'})
    assert first.status_code == 200, first.get_data(as_text=True)[-1500:]
    assert second.status_code == 422
    with app.app_context():
        tools = db.session.execute(
            db.select(ChatMessage).where(ChatMessage.session_id == session_id, ChatMessage.role == "tool")
        ).scalars()
        assert [row.tool_name for row in tools] == [LONG_NAME[:64]]


def test_a_head_request_on_a_replys_stream_leaves_it_pending(app, signed_in, default_model_id):
    from tests.chat.conftest import new_session, send, stream_events

    client, _ = signed_in()
    reply_id = send(client, new_session(client, default_model_id), "Hi")
    response = client.head(f"/chat/messages/{reply_id}/stream")
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(ChatMessage, reply_id).status == MessageStatus.PENDING
    assert stream_events(client, reply_id)[-1][1] == "done"  # the real GET still writes it
