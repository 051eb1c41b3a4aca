"""Streaming through the real default model, and the stop button."""

from __future__ import annotations

import html
import re
import threading
import time

from tests.chat.conftest import (
    PINNED_PROMPT,
    htmx_post,
    message_row,
    new_session,
    save_settings,
    send,
    stream_events,
)


def second_connection(app, client):
    """The same signed-in browser on a second connection (a button pressed while the stream runs)."""
    other = app.test_client()
    with client.session_transaction() as flask_session:
        cookie = dict(flask_session)
    with other.session_transaction() as session:
        session.update(cookie)
    return other


TOKEN_SPAN = re.compile(r"^<span>(.*)</span>$", re.S)


def _token_text(data: str) -> str:
    return html.unescape(TOKEN_SPAN.match(data).group(1))


def test_reply_streams_token_by_token_and_is_stored_whole(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=48)
    reply_id = send(client, session_id, PINNED_PROMPT)
    events = stream_events(client, reply_id)  # also loads the model, so the timing below is generation only
    row = message_row(app, reply_id)
    assert "Paris" in row.content and row.finish_reason == "stop"
    assert "cut at max tokens" not in events[-1][2]

    session_id = new_session(client, default_model_id)  # no history: a short prompt
    save_settings(client, session_id, default_model_id, max_tokens=200)
    reply_id = send(client, session_id, "Write a long poem about the sea, the wind and the stars.")
    started = time.perf_counter()
    events = stream_events(client, reply_id)
    tokens = [(at, data) for at, event, data in events if event == "token"]
    assert len(tokens) >= 40, events
    first_at, last_at = tokens[0][0] - started, tokens[-1][0] - started
    # The first piece reaches the client well before the answer is finished.
    # (An absolute margin: on a loaded machine prompt processing can take longer than generation.)
    assert last_at - first_at > 0.2, (first_at, last_at)
    assert len({round(at, 3) for at, _ in tokens}) > 10  # pieces arrived spread out, not in one burst
    assert events[-1][1] == "done"

    streamed = "".join(_token_text(data) for _, data in tokens)
    row = message_row(app, reply_id)
    assert row.status == "complete"
    assert row.content == streamed
    assert row.prompt_tokens > 10 and row.completion_tokens >= 5 and not row.tokens_estimated
    assert row.latency_ms > row.ttft_ms > 0
    assert row.model_name == "SmolLM2-135M-Instruct"
    # The final card replaces the streaming bubble and carries the figures.
    assert f'id="msg-{reply_id}"' in events[-1][2] and "tokens" in events[-1][2]


def test_stream_is_started_once(app, signed_in, default_model_id):
    """A reconnecting browser gets the finished card, never a second generation."""
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=4)
    reply_id = send(client, session_id, PINNED_PROMPT)
    stream_events(client, reply_id)
    again = stream_events(client, reply_id)
    assert [event for _, event, _ in again] == ["done"]
    assert message_row(app, reply_id).status == "complete"
    # 4 tokens cut the answer: the card says so (and how to fix it), the row keeps why it ended.
    assert message_row(app, reply_id).finish_reason == "length"
    assert "cut at max tokens" in again[0][2] and "reached its max tokens (4)" in again[0][2]


def test_stop_button_ends_generation_and_keeps_the_partial_answer(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=400, temperature=0.8)
    reply_id = send(client, session_id, "Write a long story about a dragon who learns to bake bread.")

    stopper = second_connection(app, client)
    pressed = []

    def press_stop_after_a_few_tokens(event, data):
        if event == "token" and not pressed and len(seen) >= 5:
            # From another thread, as a second browser connection would (this one is mid-stream).
            thread = threading.Thread(
                target=lambda: pressed.append(
                    htmx_post(stopper, f"/chat/messages/{reply_id}/stop").status_code
                )
            )
            thread.start()
            thread.join()

    seen = []
    events = stream_events(
        client, reply_id, on_event=lambda e, d: (seen.append(e), press_stop_after_a_few_tokens(e, d))
    )
    assert pressed == [204]
    row = message_row(app, reply_id)
    assert row.status == "stopped"
    assert 0 < row.completion_tokens < 400
    streamed = "".join(_token_text(d) for _, e, d in events if e == "token")
    assert row.content == streamed and row.content
    assert "stopped" in events[-1][2]


def test_stop_needs_csrf(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    reply_id = send(client, session_id, "Hi")
    response = client.post(f"/chat/messages/{reply_id}/stop")
    assert response.status_code == 400
    assert message_row(app, reply_id).stop_requested is False


def test_deleting_the_session_mid_reply_ends_the_stream_quietly_and_frees_the_model(
    app, signed_in, default_model_id, caplog
):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=400, temperature=0.8)
    reply_id = send(client, session_id, "Write a long story about a dragon who learns to bake bread.")
    deleter = second_connection(app, client)
    deleted = []

    def delete_after_a_few_tokens(event, data):
        if event == "token" and not deleted and len(seen) >= 5:
            thread = threading.Thread(
                target=lambda: deleted.append(htmx_post(deleter, f"/chat/{session_id}/delete").status_code)
            )
            thread.start()
            thread.join()

    seen = []
    started = time.perf_counter()
    events = stream_events(
        client, reply_id, on_event=lambda e, d: (seen.append(e), delete_after_a_few_tokens(e, d))
    )
    assert deleted == [302]
    assert [e for _, e, _ in events if e != "token"] == []  # no final card for a reply that is gone
    assert len(seen) < 100  # the generation stopped (its stop poll sees the row gone), not ran to 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    with app.app_context():
        from app.extensions import db
        from app.models import ChatMessage

        assert db.session.get(ChatMessage, reply_id) is None
    # The model's lock went with the stream: another session's reply starts at once.
    other_reply = send(client, new_session(client, default_model_id), "Hi")
    assert stream_events(client, other_reply)[-1][1] == "done"
    assert time.perf_counter() - started < 120


def test_a_page_that_goes_away_mid_reply_does_not_stop_it(app, signed_in, default_model_id):
    """A reload closes the stream: the reply is still written to its end (and a reopened page shows it
    whole), not left "stopped" for a Stop nobody pressed."""
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=48)
    reply_id = send(client, session_id, PINNED_PROMPT)
    response = client.get(f"/chat/messages/{reply_id}/stream", buffered=False)
    received = ""
    for chunk in response.response:  # read until the first tokens have come, then leave
        received += chunk.decode() if isinstance(chunk, bytes) else chunk
        if received.count("event: token") >= 2:
            break
    response.close()  # what the server does when the browser goes away
    row = message_row(app, reply_id)
    assert row.status == "complete" and "Paris" in row.content, (row.status, row.content)
    assert row.completion_tokens > 2
    assert "sse-connect" not in client.get(f"/chat/{session_id}").get_data(as_text=True)
