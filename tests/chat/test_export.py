"""Downloading a chat session as JSON or Markdown: the conversation as shown, with calls and figures."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import ChatMessage, ChatSession
from tests.chat.test_tools import WEATHER_TOOL


def seed(app, owner_id: int, model_id: int) -> int:
    with app.app_context():
        chat = ChatSession(
            owner_id=owner_id,
            model_id=model_id,
            title="Weather / Oslo",
            system_prompt="Be brief.",
            tools=[{"type": "function", "function": WEATHER_TOOL}],
        )
        db.session.add(chat)
        db.session.flush()
        call = {"id": "c1", "name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}
        problem = {
            "kind": "enum",
            "path": "unit",
            "message": "'kelvin' is not one of ['celsius', 'fahrenheit']",
        }
        db.session.add_all(
            [
                ChatMessage(session_id=chat.id, role="user", content="Weather in Oslo?"),
                ChatMessage(
                    session_id=chat.id, role="assistant", content="old answer", model_name="m", replaced=True
                ),
                ChatMessage(
                    session_id=chat.id,
                    role="assistant",
                    content='<tool_call>{"name": "get_weather"}</tool_call>',
                    model_name="SmolLM2",
                    tool_calls=[{**call, "issues": [problem]}],
                    prompt_tokens=40,
                    completion_tokens=12,
                    latency_ms=321.0,
                ),
                ChatMessage(
                    session_id=chat.id,
                    role="tool",
                    content='{"temp": 7}',
                    tool_name="get_weather",
                    tool_call_id="c1",
                ),
                ChatMessage(
                    session_id=chat.id, role="assistant", content="It is 7 °C.", model_name="SmolLM2"
                ),
            ]
        )
        db.session.commit()
        return chat.id


def test_json_and_markdown_hold_the_conversation_as_shown(app, signed_in, default_model_id):
    client, user = signed_in()
    session_id = seed(app, user.id, default_model_id)
    response = client.get(f"/chat/{session_id}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert 'filename="Weather_Oslo.json"' in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert (
        data["settings"]["system_prompt"] == "Be brief."
        and data["tools"][0]["function"]["name"] == "get_weather"
    )
    assert [m["role"] for m in data["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]  # replaced: out
    reply = data["messages"][1]
    assert reply["content"] == "" and reply["tool_calls"][0]["arguments"] == {
        "city": "Oslo",
        "unit": "kelvin",
    }
    assert "kelvin" in reply["tool_calls"][0]["problems"][0] and reply["latency_ms"] == 321.0
    # A result names the call it answers, as the call names itself.
    assert reply["tool_calls"][0]["id"] == data["messages"][2]["tool_call_id"] == "c1"

    text = client.get(f"/chat/{session_id}/export.md").get_data(as_text=True)
    assert text.startswith("# Weather / Oslo\n") and "**System:** Be brief." in text
    assert "Call `get_weather` ('kelvin' is not one of" in text and "It is 7 °C." in text
    assert "old answer" not in text and "<tool_call>" not in text and "_40 → 12 tokens · 321 ms_" in text


def test_another_users_session_and_odd_formats_are_not_found(app, signed_in, default_model_id):
    client, user = signed_in()
    session_id = seed(app, user.id, default_model_id)
    mallory, _ = signed_in("mallory@example.com")
    assert mallory.get(f"/chat/{session_id}/export.json").status_code == 404
    assert client.get(f"/chat/{session_id}/export.exe").status_code == 404
    assert "Download JSON" in client.get(f"/chat/{session_id}").get_data(as_text=True)


def test_a_result_holding_a_fence_cannot_break_out_of_its_block_in_markdown(app, signed_in, default_model_id):
    client, user = signed_in()
    with app.app_context():
        chat = ChatSession(owner_id=user.id, model_id=default_model_id, title="t")
        db.session.add(chat)
        db.session.flush()
        hostile = "x\n```\n## User\n\nI never said this\n````"
        db.session.add_all([
            ChatMessage(session_id=chat.id, role="user", content="hi"),
            ChatMessage(session_id=chat.id, role="tool", content=hostile, tool_name="f", tool_call_id="c"),
        ])  # fmt: skip
        db.session.commit()
        session_id = chat.id
    text = client.get(f"/chat/{session_id}/export.md").get_data(as_text=True)
    assert "`````json\n" + hostile + "\n`````" in text
