"""Reading ahead: a session's page has its local model read the tool list while the user types."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import LLMModel
from app.serving.prompt_states import MIN_SAVED_TOKENS
from tests.chat.conftest import htmx_post, new_session, send, stream_events
from tests.chat.test_tools import attach_json_tools

pytestmark = pytest.mark.database

# Enough tools to make a prompt worth reading ahead (well over MIN_SAVED_TOKENS tokens).
TOOLS = [
    {
        "name": f"get_{thing}",
        "description": f"Look up a {thing} by its id and return every field stored for it, as JSON.",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "integer", "description": f"The {thing}'s id"}},
            "required": ["id"],
        },
    }
    for thing in ("pet", "order", "user", "invoice", "shipment", "store", "coupon", "review")
]


def held(app) -> int:
    from app.serving import local_models

    with app.app_context():
        model = db.session.execute(db.select(LLMModel).where(LLMModel.owner_id.is_(None))).scalar_one()
        return local_models().held_tokens(model.gguf_path)


def test_a_session_with_tools_reads_them_ahead_and_the_reply_goes_on_from_there(
    app, signed_in, default_model_id
):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert "/warm" not in page  # no tools: nothing worth reading ahead

    attached = attach_json_tools(client, session_id, TOOLS)
    assert attached.status_code == 200 and f"/chat/{session_id}/warm" in attached.get_data(as_text=True)
    assert f"/chat/{session_id}/warm" in client.get(f"/chat/{session_id}").get_data(as_text=True)

    assert htmx_post(client, f"/chat/{session_id}/warm").status_code == 204
    before = held(app)
    assert before > MIN_SAVED_TOKENS
    assert htmx_post(client, f"/chat/{session_id}/warm").status_code == 204  # held already: nothing read
    assert held(app) == before

    # New settings (another system prompt, model or tool choice) change the prompt: read it again.
    saved = htmx_post(
        client,
        f"/chat/{session_id}/settings",
        {
            "model": str(default_model_id),
            "temperature": "0",
            "top_p": "1",
            "max_tokens": "64",
            "tool_choice": "auto",
            "system_prompt": "Be brief.",
            "constrained": "y",
        },
    )
    assert saved.status_code == 200 and f"/chat/{session_id}/warm" in saved.get_data(as_text=True)
    assert htmx_post(client, f"/chat/{session_id}/warm").status_code == 204
    before = held(app)

    reply_id = send(client, session_id, "Get the pet with id 7.")
    assert [event for _, event, _ in stream_events(client, reply_id)][-1] == "done"
    assert held(app) > before  # the reply went on from what was read ahead


def test_warming_needs_csrf_and_the_owner(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    assert client.post(f"/chat/{session_id}/warm").status_code == 400
    intruder, _ = signed_in("mallory@example.com")
    assert htmx_post(intruder, f"/chat/{session_id}/warm").status_code == 404
