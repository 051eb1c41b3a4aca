"""Chat in a browser without JavaScript: the reply is written by the request that sent the message (a
page without scripts never opens the reply's stream), and a pending reply on a page has a button that
writes it."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import ChatMessage, ChatSession
from tests.chat.conftest import PINNED_PROMPT, STREAM_URL, htmx_post, message_row, new_session, save_settings
from tests.chat.test_arena import add_twin, start
from tests.chat.test_compare import compare
from tests.conftest import post_form

# What a browser with scripts off sends from the <noscript> field of a form that starts replies.
NO_SCRIPT = {"no_script": "1"}
WRITE_FORM = re.compile(r'action="/chat/messages/(\d+)/write"')


def assistant_rows(app) -> list[ChatMessage]:
    with app.app_context():
        query = db.select(ChatMessage).where(ChatMessage.role == "assistant").order_by(ChatMessage.id)
        rows = list(db.session.execute(query).scalars())
        db.session.expunge_all()
        return rows


def test_a_send_without_scripts_comes_back_with_the_reply_written(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=24)
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert '<noscript><input type="hidden" name="no_script" value="1"></noscript>' in page  # the composer

    response = post_form(client, f"/chat/{session_id}/messages", {"content": PINNED_PROMPT, **NO_SCRIPT})
    assert response.status_code == 302 and response.headers["Location"] == f"/chat/{session_id}"
    [reply] = assistant_rows(app)
    assert reply.status == "complete" and "Paris" in reply.content, (reply.status, reply.error)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Paris" in page and not STREAM_URL.search(page)  # a finished card, nothing left to stream

    # Regenerate and edit, without scripts, also come back finished.
    regenerated = post_form(client, f"/chat/{session_id}/messages/{reply.id}/regenerate", NO_SCRIPT)
    assert regenerated.status_code == 302
    edited = post_form(
        client, f"/chat/{session_id}/messages/{reply.id - 1}/edit", {"content": "Say hello.", **NO_SCRIPT}
    )
    assert edited.status_code == 302
    rows = assistant_rows(app)
    assert len(rows) == 3 and all(row.status == "complete" and row.content for row in rows)


def test_a_plain_post_without_the_flag_still_leaves_the_reply_to_its_stream(app, signed_in, default_model_id):
    """The flag, not the missing htmx header, says scripts are off: a browser with scripts always
    streams, so nothing is generated twice or inside the send."""
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    assert post_form(client, f"/chat/{session_id}/messages", {"content": "Hi"}).status_code == 302
    [reply] = assistant_rows(app)
    assert reply.status == "pending"


def test_a_pending_reply_offers_a_write_button_that_writes_it(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=16)
    htmx_post(client, f"/chat/{session_id}/messages", {"content": PINNED_PROMPT})  # scripts on: pending
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    [reply_id] = [int(i) for i in WRITE_FORM.findall(page)]
    assert f'name="back" value="/chat/{session_id}"' in page

    # Another user cannot write it, and a missing CSRF token is refused: it stays pending.
    mallory, _ = signed_in("mallory@example.com")
    assert post_form(mallory, f"/chat/messages/{reply_id}/write").status_code == 404
    assert client.post(f"/chat/messages/{reply_id}/write").status_code == 400
    assert message_row(app, reply_id).status == "pending"

    written = post_form(client, f"/chat/messages/{reply_id}/write", {"back": f"/chat/{session_id}"})
    assert written.status_code == 302 and written.headers["Location"] == f"/chat/{session_id}"
    reply = message_row(app, reply_id)
    assert reply.status == "complete" and reply.content
    assert not WRITE_FORM.search(client.get(f"/chat/{session_id}").get_data(as_text=True))

    # A finished reply is left as it is; a `back` that is not a chat page of this app is ignored.
    for hostile in ("https://evil.example/", "//evil.example/chat/", "/chat/../auth/logout", "/admin/"):
        again = post_form(client, f"/chat/messages/{reply_id}/write", {"back": hostile})
        assert again.headers["Location"] == f"/chat/{session_id}#msg-{reply_id}", hostile
    assert message_row(app, reply_id).content == reply.content


def test_compare_and_the_arena_without_scripts_write_every_answer(app, signed_in, default_model_id):
    client, _ = signed_in()
    twin_id = add_twin(app, default_model_id)
    models = [str(default_model_id), str(twin_id)]
    settings = {"temperature": "0", "max_tokens": "16", **NO_SCRIPT}
    compared = compare(client, models=models, content="Hi", **settings)
    assert compared.status_code == 302
    assert [row.status for row in assistant_rows(app)] == ["complete", "complete"]
    follow_up = post_form(
        client, compared.headers["Location"] + "/messages", {"content": "More?", **NO_SCRIPT}
    )
    assert follow_up.status_code == 302

    battle = start(client, models=models, content="Hey", **settings)
    assert battle.status_code == 302 and "/chat/arena/" in battle.headers["Location"]
    rows = assistant_rows(app)
    assert len(rows) == 6 and all(row.status == "complete" for row in rows)
    page = client.get(battle.headers["Location"]).get_data(as_text=True)
    assert not STREAM_URL.search(page) and not WRITE_FORM.search(page)
    with app.app_context():  # the arena's sides stayed blind
        assert db.session.execute(db.select(db.func.count()).select_from(ChatSession)).scalar() == 4
