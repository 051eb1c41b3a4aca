"""A reply whose `<tool_call>` block cannot be read is an invalid call on its card and in Analytics,
not a reply without calls; it gets no result form, and is not sent back as a call."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import LLMModel
from tests.chat.conftest import message_row, new_session, send, stream_events
from tests.chat.test_tools import WEATHER_TOOL, attach_json_tools
from tests.llama_server import HTTPAnswer, serve_http

BROKEN = 'Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>'


def streamed_reply(text: str) -> HTTPAnswer:
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
        for choices in (
            [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
            [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        )
    ]
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return HTTPAnswer(200, body, {"Content-Type": "text/event-stream"})


def test_an_unreadable_call_is_shown_and_counted_as_invalid(app, signed_in):
    client, admin = signed_in("admin@example.com", is_admin=True)  # admins may use loopback endpoints
    with serve_http(lambda request: streamed_reply(BROKEN)) as base_url:
        with app.app_context():
            model = LLMModel(
                owner_id=admin.id,
                name="echo",
                provider="openai_compatible",
                base_url=f"{base_url}/v1",
                model_id="m",
                enabled=True,
                supports_streaming=True,
                supports_tools=True,
                max_tokens=64,
            )
            db.session.add(model)
            db.session.commit()
            model_id = model.id
        session_id = new_session(client, model_id)
        assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
        reply_id = send(client, session_id, "Weather in Paris?")
        card = stream_events(client, reply_id)[-1][2]
    reply = message_row(app, reply_id)
    assert reply.status == "complete", reply.error
    assert reply.tool_calls_valid is False and len(reply.tool_calls) == 1
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["unparsed"] and call["issues"][0]["kind"] == "invalid"
    assert "Not a readable call" in card and 'name="call_id"' not in card  # no result form for it
    from app.chat.generation import _as_request_message

    sent = _as_request_message(reply)
    assert "tool_calls" not in sent and sent["content"] == BROKEN  # the model's own words, as written
