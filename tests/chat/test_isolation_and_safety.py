"""Another user's sessions are invisible; model output is text, never markup; bad input is refused."""

from __future__ import annotations

from app.extensions import db
from app.models import ChatMessage, ChatSession
from tests.chat.conftest import htmx_post, new_session, send
from tests.conftest import csrf_token


def _finished_reply(app, reply_id: int, content: str) -> None:
    with app.app_context():
        message = db.session.get(ChatMessage, reply_id)
        message.content, message.status = content, "complete"
        db.session.commit()


def test_another_users_session_is_a_404_everywhere(app, signed_in, default_model_id):
    alice, _ = signed_in("alice@example.com")
    session_id = new_session(alice, default_model_id)
    reply_id = send(alice, session_id, "secret plans")
    bob, _ = signed_in("bob@example.com")

    assert bob.get(f"/chat/{session_id}").status_code == 404
    assert bob.get(f"/chat/messages/{reply_id}/stream").status_code == 404
    assert bob.get(f"/chat/{session_id}/composer").status_code == 404
    for path, data in [
        (f"/chat/{session_id}/messages", {"content": "hi"}),
        (f"/chat/messages/{reply_id}/stop", {}),
        (
            f"/chat/{session_id}/settings",
            {"model": default_model_id, "temperature": 0, "top_p": 1, "max_tokens": 5, "tool_choice": "auto"},
        ),
        (f"/chat/{session_id}/tools", {"source": "json", "tools_json": "[]"}),
        (f"/chat/{session_id}/tools/remove", {}),
        (f"/chat/{session_id}/rename", {"title": "mine now"}),
        (f"/chat/{session_id}/tags", {"tags": "stolen"}),
        (f"/chat/{session_id}/delete", {}),
        (f"/chat/{session_id}/messages/{reply_id}/tool-result", {"call_id": "x", "content": "y"}),
    ]:
        assert htmx_post(bob, path, data).status_code == 404, path
    assert "secret plans" not in bob.get("/chat/", follow_redirects=True).get_data(as_text=True)
    with app.app_context():
        session = db.session.get(ChatSession, session_id)
        assert session.title == "secret plans" and session.tags == []
        assert db.session.get(ChatMessage, reply_id).stop_requested is False


def test_model_output_with_markup_is_shown_as_text(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    reply_id = send(client, session_id, "<img src=x onerror=alert(1)>")
    _finished_reply(
        app,
        reply_id,
        'Here: <script>alert("x")</script> and [link](javascript:alert(1))\n\n```html\n<b>code</b>\n```',
    )
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror" in page
    assert 'href="javascript:' not in page
    assert '<pre><code class="language-html">&lt;b&gt;code&lt;/b&gt;' in page  # Markdown still renders


def test_message_and_tag_input_is_checked(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    assert htmx_post(client, f"/chat/{session_id}/messages", {"content": "   "}).status_code == 422
    too_long = "x" * 40_000
    assert htmx_post(client, f"/chat/{session_id}/messages", {"content": too_long}).status_code == 422
    assert htmx_post(client, f"/chat/{session_id}/tags", {"tags": "ok, <bad>"}).status_code == 422
    assert htmx_post(client, f"/chat/{session_id}/tags", {"tags": "Eval, petstore, eval"}).status_code == 302
    settings = {
        "model": default_model_id,
        "temperature": 5,
        "top_p": 1,
        "max_tokens": 5,
        "tool_choice": "auto",
    }
    assert htmx_post(client, f"/chat/{session_id}/settings", settings).status_code == 422
    with app.app_context():
        session = db.session.get(ChatSession, session_id)
        assert session.tags == ["eval", "petstore"] and session.temperature == 0.7
        assert db.session.execute(db.select(db.func.count(ChatMessage.id))).scalar() == 0
    # No CSRF token: refused.
    assert client.post(f"/chat/{session_id}/messages", data={"content": "hi"}).status_code == 400
    assert client.post("/chat/new", data={"model": default_model_id}).status_code == 400
    # A disabled or unknown model cannot start a session.
    response = client.post("/chat/new", data={"csrf_token": csrf_token(client, "/chat/"), "model": "999"})
    assert response.status_code == 422


def test_tag_filter_and_search_in_the_sidebar(app, signed_in, default_model_id):
    client, _ = signed_in()
    first = new_session(client, default_model_id)
    second = new_session(client, default_model_id)
    htmx_post(client, f"/chat/{first}/rename", {"title": "Weather experiments"})
    htmx_post(client, f"/chat/{second}/tags", {"tags": "petstore"})
    page = client.get("/chat/?tag=petstore").get_data(as_text=True)
    assert f"/chat/{second}" in page and f'href="/chat/{first}"' not in page
    page = client.get("/chat/?q=weather").get_data(as_text=True)
    assert f"/chat/{first}" in page and f'href="/chat/{second}"' not in page
    send(client, second, "How wide is a zebra crossing?")  # the search reads messages too
    page = client.get("/chat/?q=ZEBRA").get_data(as_text=True)
    assert f"/chat/{second}" in page and f'href="/chat/{first}"' not in page
    assert f'href="/chat/{second}"' not in client.get("/chat/?q=%25zebra").get_data(as_text=True)
    mallory, _ = signed_in("mallory@example.com")
    assert f"/chat/{second}" not in mallory.get("/chat/?q=zebra").get_data(as_text=True)
