"""A session's stop sequences and penalties: saved from the settings form (bad values refused, nothing
saved), shown again, exported, and applied to the reply by the real default model."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import ChatSession
from tests.chat.conftest import (
    PINNED_PROMPT,
    htmx_post,
    message_row,
    new_session,
    save_settings,
    send,
    stream_events,
)


def test_a_stop_sequence_ends_the_reply_before_it(app, signed_in, default_model_id):
    client, _ = signed_in()
    plain = new_session(client, default_model_id)
    save_settings(client, plain, default_model_id)
    stream_events(client, reply := send(client, plain, PINNED_PROMPT))
    full = message_row(app, reply).content
    assert "Paris" in full  # the pinned answer, so the stop below has something to cut

    stopped = new_session(client, default_model_id)
    save_settings(client, stopped, default_model_id, stop_sequences="Paris\n\n  \nnever written")
    stream_events(client, reply := send(client, stopped, PINNED_PROMPT))
    row = message_row(app, reply)
    assert row.status == "complete" and row.finish_reason == "stop"
    assert "Paris" not in row.content and full.startswith(row.content.rstrip())


def test_settings_round_trip_and_reach_the_export(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(
        client, session_id, default_model_id,
        stop_sequences="END\r\nObservation:", frequency_penalty="0.5", presence_penalty="-0.25",
    )  # fmt: skip
    with app.app_context():
        chat = db.session.get(ChatSession, session_id)
        assert chat.stop_sequences == ["END", "Observation:"]
        assert (chat.frequency_penalty, chat.presence_penalty) == (0.5, -0.25)
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert "END\nObservation:</textarea>" in page and 'value="0.5"' in page
    settings = json.loads(client.get(f"/chat/{session_id}/export.json").get_data(as_text=True))["settings"]
    assert settings["stop"] == ["END", "Observation:"] and settings["presence_penalty"] == -0.25

    save_settings(client, session_id, default_model_id, frequency_penalty="", presence_penalty="")
    with app.app_context():
        chat = db.session.get(ChatSession, session_id)
        assert (chat.stop_sequences, chat.frequency_penalty, chat.presence_penalty) == ([], 0.0, 0.0)


def test_bad_stop_sequences_and_penalties_are_refused_and_nothing_is_saved(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    base = {"model": str(default_model_id), "temperature": "0.3", "top_p": "1", "max_tokens": "64",
            "tool_choice": "auto"}  # fmt: skip
    for bad, message in [
        ({"stop_sequences": "a\nb\nc\nd\ne"}, "At most 4 lines"),
        ({"stop_sequences": "x" * 101}, "at most 100 characters"),
        ({"frequency_penalty": "2.5"}, "between -2.0 and 2.0"),
        ({"presence_penalty": "nan"}, "between -2.0 and 2.0"),
        ({"presence_penalty": "lots"}, "Not a valid float"),
    ]:
        response = htmx_post(client, f"/chat/{session_id}/settings", {**base, **bad})
        assert response.status_code == 422, bad
        assert message in response.get_data(as_text=True), bad
    with app.app_context():
        chat = db.session.get(ChatSession, session_id)
        assert chat.temperature != 0.3 and chat.stop_sequences == [] and chat.presence_penalty == 0.0
