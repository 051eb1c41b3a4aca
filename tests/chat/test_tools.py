"""Tools in chat: pasted definitions, constrained calls from the real default model, checked cards,
and continuing with a tool result."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import ChatMessage, ChatSession
from tests.chat.conftest import htmx_post, message_row, new_session, save_settings, send, stream_events

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


def attach_json_tools(client, session_id: int, tools) -> object:
    return htmx_post(client, f"/chat/{session_id}/tools", {"source": "json", "tools_json": json.dumps(tools)})


def test_pasted_tools_are_validated(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    bad = [{"name": "get weather!", "parameters": {"type": "object", "properties": {"x": {"type": "strin"}}}}]
    response = attach_json_tools(client, session_id, bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "get weather!" in page or "name" in page
    response = htmx_post(client, f"/chat/{session_id}/tools", {"source": "json", "tools_json": "[{oops"})
    assert response.status_code == 422 and "Not valid JSON" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ChatSession, session_id).tools == []

    response = attach_json_tools(client, session_id, [WEATHER_TOOL])
    assert response.status_code == 200
    with app.app_context():
        tools = db.session.get(ChatSession, session_id).tools
    assert [t["function"]["name"] for t in tools] == ["get_weather"]


def test_constrained_call_is_valid_and_the_conversation_continues_with_the_result(
    app, signed_in, default_model_id
):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
    save_settings(client, session_id, default_model_id, tool_choice="required", max_tokens=64)

    reply_id = send(client, session_id, "What's the weather in Oslo?")
    events = stream_events(client, reply_id)
    row = message_row(app, reply_id)
    assert row.status == "complete" and row.constrained is True
    assert row.tool_calls and row.tool_calls[0]["name"] == "get_weather"
    assert "Oslo" in row.tool_calls[0]["arguments"]["city"]
    assert row.tool_calls[0]["issues"] == [] and row.tool_calls_valid is True
    card = events[-1][2]
    assert "tool-call valid" in card and "get_weather" in card and "Send result and continue" in card

    call_id = row.tool_calls[0]["id"]
    response = htmx_post(
        client,
        f"/chat/{session_id}/messages/{reply_id}/tool-result",
        {"call_id": call_id, "content": '{"temperature": 7, "unit": "celsius", "sky": "cloudy"}'},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    follow_up_id = int(response.get_data(as_text=True).split('sse-connect="/chat/messages/')[1].split("/")[0])
    stream_events(client, follow_up_id)
    follow_up = message_row(app, follow_up_id)
    assert follow_up.status == "complete"
    # After a result the model may answer in words: the grammar allows text, and it is not forced to call.
    assert follow_up.content.strip()
    with app.app_context():
        roles = [
            m.role
            for m in db.session.execute(
                db.select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id)
            ).scalars()
        ]
    assert roles == ["user", "assistant", "tool", "assistant"]

    # The same call cannot be answered twice.
    again = htmx_post(
        client,
        f"/chat/{session_id}/messages/{reply_id}/tool-result",
        {"call_id": call_id, "content": "{}"},
    )
    assert again.status_code == 422


def test_invalid_calls_are_flagged_on_the_card(app, signed_in, default_model_id):
    """A reply whose calls break the schema (as an unconstrained tiny model's often do) shows why."""
    from app.chat.generation import ReplyPlan, _finish
    from app.serving import ChatResult, SamplingParams, ToolCall

    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    attach_json_tools(client, session_id, [WEATHER_TOOL])
    reply_id = send(client, session_id, "weather?")
    calls = [
        ToolCall("get_forecast", {"city": "Oslo"}),
        ToolCall("get_weather", {"unit": "celsius"}),
        ToolCall("get_weather", {"city": 42}),
        ToolCall("get_weather", {"city": "Oslo", "unit": "kelvin"}),
    ]
    with app.app_context():
        message = db.session.get(ChatMessage, reply_id)
        plan = ReplyPlan(
            messages=[], tools=message.session.tools, params=SamplingParams(), tool_choice="auto"
        )
        _finish(message, ChatResult("", 10, 5, 0.2, 0.01, "stop", tool_calls=calls), plan)
    row = message_row(app, reply_id)
    kinds = [[issue["kind"] for issue in call["issues"]] for call in row.tool_calls]
    assert kinds == [["unknown_function"], ["missing_required"], ["wrong_type"], ["bad_enum"]]
    assert row.tool_calls_valid is False and row.constrained is False
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    for kind in ("unknown_function", "missing_required", "wrong_type", "bad_enum"):
        assert kind in page


def test_a_call_cut_at_max_tokens_says_the_call_was_lost(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
    save_settings(client, session_id, default_model_id, tool_choice="required", max_tokens=6)
    reply_id = send(client, session_id, "What's the weather in Oslo?")
    card = stream_events(client, reply_id)[-1][2]
    row = message_row(app, reply_id)
    assert (row.finish_reason, row.tool_calls) == ("length", None) and "<tool_call>" in row.content
    assert "in the middle of a tool call, so the call is lost" in card and "cut at max tokens" in card


def test_an_earlier_call_goes_back_to_the_model_once_structured_not_also_as_text():
    from app.chat.generation import _as_request_message
    from app.models import ChatMessage

    call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}
    text = 'Checking. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    message = ChatMessage(role="assistant", content=text, tool_calls=[call], status="complete")
    sent = _as_request_message(message)
    assert sent["content"] == "Checking." and "<tool_call>" not in json.dumps(sent["content"])
    assert [c["function"]["name"] for c in sent["tool_calls"]] == ["get_weather"]
    message.content = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    assert _as_request_message(message)["content"] is None
