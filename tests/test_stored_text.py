"""Text and JSON that one database stores and the other refuses: a NUL character (PostgreSQL text has
none) and NaN / Infinity (not JSON; PostgreSQL's json type refuses them). Both databases keep the same
thing: the text without the NUL, and null for the numbers. Run on SQLite, and on PostgreSQL in CI."""

from __future__ import annotations

import math

from app.extensions import db
from app.json_input import dumps_for_storage
from app.models import ChatMessage, ChatSession
from tests.chat.conftest import htmx_post, new_session


def test_non_finite_numbers_are_stored_as_null_like_json_stringify():
    assert dumps_for_storage({"a": [1.5, math.nan], "b": {"c": math.inf}, "d": "NaN"}) == (
        '{"a": [1.5, null], "b": {"c": null}, "d": "NaN"}'
    )
    assert dumps_for_storage({"ok": 1}) == '{"ok": 1}'


def test_a_nul_in_a_message_and_nan_in_pasted_tools_are_stored_on_either_database(
    app, signed_in, default_model_id
):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    # Typed into a form, a NUL is refused with the reason (no field takes one)...
    refused = htmx_post(client, f"/chat/{session_id}/messages", {"content": "hi\x00there"})
    assert refused.status_code == 400 and "NUL character" in refused.get_data(as_text=True)
    with app.app_context():  # ...and one that arrives another way (a model's reply, a file) is dropped
        db.session.add(ChatMessage(session_id=session_id, role="user", content="hi\x00there"))
        db.session.commit()
    tools = (
        '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", '
        '"properties": {"a": {"type": "number", "default": NaN}}}}}]'
    )
    response = htmx_post(client, f"/chat/{session_id}/tools", {"source": "json", "tools_json": tools})
    assert response.status_code == 200
    with app.app_context():
        message = db.session.execute(db.select(ChatMessage).where(ChatMessage.role == "user")).scalar_one()
        assert message.content == "hithere"
        stored = db.session.get(ChatSession, session_id).tools
        assert stored[0]["function"]["parameters"]["properties"]["a"]["default"] is None
