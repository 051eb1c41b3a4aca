"""Regenerate: the last reply is replaced by a new one from the session's model; the old one leaves the
conversation (page, prompt, training rows) but still counts in Analytics."""

from __future__ import annotations

from app.chat.examples import Answer, training_row
from app.extensions import db
from app.models import ChatMessage, ChatSession, LLMModel
from tests.chat.conftest import (
    PINNED_PROMPT,
    STREAM_URL,
    htmx_post,
    message_row,
    new_session,
    save_settings,
    send,
    stream_events,
)


def regenerate(client, session_id: int, message_id: int):
    return htmx_post(client, f"/chat/{session_id}/messages/{message_id}/regenerate")


def test_the_last_reply_is_replaced_by_one_from_the_current_model(app, signed_in, default_model_id):
    with app.app_context():  # the same GGUF under another name: switching models shows in the new reply
        default = db.session.get(LLMModel, default_model_id)
        twin = LLMModel(name="twin", provider="local_gguf", gguf_path=default.gguf_path, max_tokens=48)
        db.session.add(twin)
        db.session.commit()
        twin_id = twin.id
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=32)
    first = send(client, session_id, PINNED_PROMPT)
    assert "Regenerate" in stream_events(client, first)[-1][2]

    save_settings(client, session_id, twin_id, max_tokens=32)
    response = regenerate(client, session_id, first)
    assert response.status_code == 200, response.get_data(as_text=True)
    second = int(STREAM_URL.search(response.get_data(as_text=True)).group(1))
    stream_events(client, second)
    old, new = message_row(app, first), message_row(app, second)
    assert old.replaced and not new.replaced and new.status == "complete"
    assert (old.model_name, new.model_name) == ("SmolLM2-135M-Instruct", "twin")
    # Greedy, same prompt and weights; not compared byte for byte, because the twin reuses the loaded
    # model's KV cache and a different batch shape can flip a near tie on some CPUs.
    assert "Paris" in old.content and "Paris" in new.content
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert f'id="msg-{second}"' in page and f'id="msg-{first}"' not in page

    assert regenerate(client, session_id, first).status_code == 422  # replaced already
    third = send(client, session_id, "And of Italy?")
    stream_events(client, third)
    refused = regenerate(client, session_id, second)  # no longer the last reply
    assert refused.status_code == 422 and "Only the last reply" in refused.get_data(as_text=True)
    with app.app_context():
        chat = db.session.get(ChatSession, session_id)
        row = training_row(chat, db.session.get(ChatMessage, third), Answer("Rome.", []), "train")
        replies = db.session.execute(
            db.select(db.func.count()).where(
                ChatMessage.session_id == session_id, ChatMessage.role == "assistant"
            )
        ).scalar_one()
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    assert replies == 3  # the replaced reply is kept: Analytics still counts it


def test_regenerate_needs_csrf_and_the_owner(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=8)
    reply = send(client, session_id, "Hi")
    stream_events(client, reply)
    assert client.post(f"/chat/{session_id}/messages/{reply}/regenerate").status_code == 400
    mallory, _ = signed_in("mallory@example.com")
    assert regenerate(mallory, session_id, reply).status_code == 404
    assert not message_row(app, reply).replaced


def test_the_last_message_is_edited_and_sent_again(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=16)
    first_prompt_reply = send(client, session_id, "Hello")
    stream_events(client, first_prompt_reply)
    reply = send(client, session_id, "What is the capital of Fance?")
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert page.count("Save and send again") == 1  # only the last user message can be edited
    pending = htmx_post(client, f"/chat/{session_id}/messages/{reply - 1}/edit", {"content": "Fixed?"})
    assert pending.status_code == 422 and "once its reply has finished" in pending.get_data(as_text=True)
    stream_events(client, reply)

    for content, expected in (("   ", "Type a message."), ("x" * 40_000, "At most 32,000 characters.")):
        refused = htmx_post(client, f"/chat/{session_id}/messages/{reply - 1}/edit", {"content": content})
        assert refused.status_code == 422 and expected in refused.get_data(as_text=True)
    older = htmx_post(client, f"/chat/{session_id}/messages/{first_prompt_reply - 1}/edit", {"content": "Hi"})
    assert older.status_code == 422 and "Only the last message" in older.get_data(as_text=True)

    edited = htmx_post(client, f"/chat/{session_id}/messages/{reply - 1}/edit", {"content": PINNED_PROMPT})
    assert edited.status_code == 302 and edited.headers["Location"].startswith(f"/chat/{session_id}#msg-")
    new_reply = int(edited.headers["Location"].rsplit("-", 1)[1])
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert (
        "Fance" not in page
        and PINNED_PROMPT in page
        and f'sse-connect="/chat/messages/{new_reply}/stream"' in page
    )
    stream_events(client, new_reply)
    assert message_row(app, new_reply).status == "complete"
    assert message_row(app, reply).replaced and message_row(app, reply - 1).replaced

    assert (
        client.post(f"/chat/{session_id}/messages/{new_reply - 1}/edit", data={"content": "x"}).status_code
        == 400
    )
    mallory, _ = signed_in("mallory@example.com")
    stolen = htmx_post(mallory, f"/chat/{session_id}/messages/{new_reply - 1}/edit", {"content": "x"})
    assert stolen.status_code == 404
