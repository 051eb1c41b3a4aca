"""Calls from a remote model (a loopback server answering as OpenAI would): a `<tool_call>` block that
cannot be read is an invalid call on its card and in Analytics, not a reply without calls, and is never
sent back as a call; several calls in one reply are answered together, once each has its result."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.models import LLMModel
from tests.chat.conftest import htmx_post, message_row, new_session, send, stream_events
from tests.chat.test_tools import WEATHER_TOOL, attach_json_tools
from tests.llama_server import HTTPAnswer, serve_http

BROKEN = 'Let me check. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>'


def streamed_reply(text: str = "", calls: list[dict] | None = None) -> HTTPAnswer:
    delta = {"role": "assistant", "content": text}
    if calls:
        delta["tool_calls"] = [
            {
                "index": i,
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["args"]},
            }
            for i, c in enumerate(calls)
        ]
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
        for choices in (
            [{"index": 0, "delta": delta, "finish_reason": None}],
            [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}],
        )
    ]
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return HTTPAnswer(200, body, {"Content-Type": "text/event-stream"})


def remote_model(app, owner_id: int, base_url: str) -> int:
    with app.app_context():
        model = LLMModel(
            owner_id=owner_id,
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
        return model.id


def ask_with_weather_tool(app, signed_in, answer: HTTPAnswer):
    """(the reply row, its final card) for "Weather in Paris?" with the weather tool attached, answered
    by a remote model that always sends `answer`."""
    client, admin = signed_in("admin@example.com", is_admin=True)  # admins may use loopback endpoints
    with serve_http(lambda request: answer) as base_url:
        session_id = new_session(client, remote_model(app, admin.id, base_url))
        assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
        reply_id = send(client, session_id, "Weather in Paris?")
        card = stream_events(client, reply_id)[-1][2]
    return message_row(app, reply_id), card


def test_an_unreadable_call_is_shown_and_counted_as_invalid(app, signed_in):
    reply, card = ask_with_weather_tool(app, signed_in, streamed_reply(BROKEN))
    assert reply.status == "complete", reply.error
    assert reply.tool_calls_valid is False and len(reply.tool_calls) == 1
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["unparsed"] and call["issues"][0]["kind"] == "invalid"
    assert "Not a readable call" in card and 'name="call_id"' not in card  # no result form for it
    from app.chat.generation import _as_request_message

    sent = _as_request_message(reply)
    assert "tool_calls" not in sent and sent["content"] == BROKEN  # the model's own words, as written


def test_a_structured_call_with_broken_arguments_is_shown_and_counted_as_invalid(app, signed_in):
    cut = [{"id": "call_1", "name": "get_weather", "args": '{"city": "Par'}]
    reply, card = ask_with_weather_tool(app, signed_in, streamed_reply(calls=cut))
    assert reply.status == "complete", reply.error
    assert reply.tool_calls_valid is False and len(reply.tool_calls) == 1  # was: no call at all
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["unparsed"]
    assert "Not a readable call" in card and 'name="call_id"' not in card


TWO_CALLS = [
    {"id": "call_oslo", "name": "get_weather", "args": '{"city": "Oslo"}'},
    {"id": "call_lima", "name": "get_weather", "args": '{"city": "Lima"}'},
]


def calls_then_words(words: str):
    """A server that makes TWO_CALLS, then answers `words` once the request carries a tool result."""

    def answer(request):
        asked = json.loads(request.body)
        if any(m["role"] == "tool" for m in asked["messages"]):
            return streamed_reply(words)
        return streamed_reply(calls=TWO_CALLS)

    return answer


def test_two_calls_in_one_reply_are_answered_together_once_both_have_results(app, signed_in):
    seen = []
    client, admin = signed_in("admin@example.com", is_admin=True)
    with serve_http(calls_then_words("Oslo is cold, Lima is mild."), seen) as base_url:
        session_id = new_session(client, remote_model(app, admin.id, base_url))
        assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
        reply_id = send(client, session_id, "Weather in Oslo and Lima?")
        card = stream_events(client, reply_id)[-1][2]
        assert card.count('name="call_id"') == 2  # a result form for each call
        path = f"/chat/{session_id}/messages/{reply_id}/tool-result"
        first = htmx_post(client, path, {"call_id": "call_oslo", "content": '{"temp": -3}'})
        assert first.status_code == 200 and "sse-connect" not in first.get_data(as_text=True)
        assert len(seen) == 1  # nothing asked of the model yet: one call still has no result
        second = htmx_post(client, path, {"call_id": "call_lima", "content": '{"temp": 18}'})
        assert second.status_code == 200
        follow_up = int(second.get_data(as_text=True).split('sse-connect="/chat/messages/')[1].split("/")[0])
        stream_events(client, follow_up)
    assert message_row(app, follow_up).content == "Oslo is cold, Lima is mild."
    sent = json.loads(seen[-1].body)["messages"]
    assert [m["role"] for m in sent][-3:] == ["assistant", "tool", "tool"]
    assert {m["tool_call_id"] for m in sent if m["role"] == "tool"} == {"call_oslo", "call_lima"}


def test_an_evaluation_scores_an_unreadable_call_as_wrong_even_where_no_call_was_due(app, signed_in):
    """An irrelevance case (no call is the right answer): a botched call is not "no call"."""
    from app.evaluations.cases import EvalCase
    from jobs.evaluation import _answer

    client, admin = signed_in("admin@example.com", is_admin=True)
    case = EvalCase(
        id="irrelevance_0",
        category="irrelevance",
        messages=[{"role": "user", "content": "Tell me a joke."}],
        tools=[WEATHER_TOOL],
        expects_call=False,
        expected="no call",
        judge=lambda calls: (not calls, "no call" if not calls else "called"),
    )
    with serve_http(lambda request: streamed_reply(BROKEN)) as base_url:
        model_id = remote_model(app, admin.id, base_url)
        with app.app_context():  # the model's owner is an admin: loopback is allowed
            item = _answer(db.session.get(LLMModel, model_id), case, constrained=False)
    assert item["correct"] is False and item["valid"] is False
    assert "could not be read" in item["reason"]


def test_typing_on_with_a_call_left_unanswered_sends_only_the_answered_calls(app, signed_in):
    seen = []
    client, admin = signed_in("admin@example.com", is_admin=True)
    with serve_http(calls_then_words("Oslo is cold."), seen) as base_url:
        session_id = new_session(client, remote_model(app, admin.id, base_url))
        assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
        reply_id = send(client, session_id, "Weather in Oslo and Lima?")
        stream_events(client, reply_id)
        path = f"/chat/{session_id}/messages/{reply_id}/tool-result"
        assert htmx_post(client, path, {"call_id": "call_oslo", "content": '{"temp": -3}'}).status_code == 200
        stream_events(client, send(client, session_id, "Never mind Lima. How cold is Oslo?"))
    sent = json.loads(seen[-1].body)["messages"]
    (assistant,) = [m for m in sent if m["role"] == "assistant"]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_oslo"]  # Lima's call had no result
    assert [m["role"] for m in sent][-3:] == ["assistant", "tool", "user"]


@pytest.mark.parametrize("choice", ["required", "auto"])
def test_a_remote_model_is_sent_the_sessions_tool_choice(app, signed_in, choice):
    from tests.chat.conftest import save_settings

    seen = []
    client, admin = signed_in("admin@example.com", is_admin=True)
    with serve_http(lambda request: streamed_reply("Fine."), seen) as base_url:
        model_id = remote_model(app, admin.id, base_url)
        session_id = new_session(client, model_id)
        assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
        save_settings(client, session_id, model_id, tool_choice=choice)
        stream_events(client, send(client, session_id, "Weather in Oslo?"))
    asked = json.loads(seen[-1].body)
    assert asked["tool_choice"] == choice and asked["tools"][0]["function"]["name"] == "get_weather"


def test_half_a_surrogate_pair_from_a_remote_model_is_a_replacement_character_not_a_stuck_reply(
    app, signed_in
):
    call = {"id": "call_1", "name": "get_weather", "args": '{"city": "Par\\ud800is"}'}
    reply, card = ask_with_weather_tool(app, signed_in, streamed_reply("Hi \ud800 there", [call]))
    assert reply.status == "complete", reply.error
    assert reply.content == "Hi \ufffd there"
    assert reply.tool_calls[0]["arguments"] == {"city": "Par\ufffdis"}
    assert "Hi \ufffd there" in card


@pytest.mark.parametrize(
    ("server_id", "kept"),
    [(["x"], False), (7, False), ("c" * 100, False), ("", False), ("call_ok", True)],
)
def test_a_servers_call_id_is_kept_only_when_it_can_be_answered(app, signed_in, server_id, kept):
    call = {"id": server_id, "name": "get_weather", "args": '{"city": "Paris"}'}
    reply, _ = ask_with_weather_tool(app, signed_in, streamed_reply("", [call]))
    assert reply.status == "complete", reply.error
    (stored,) = reply.tool_calls
    assert stored["id"] == (server_id if kept else f"call_{reply.id}_0")
    client = app.test_client()
    from tests.conftest import login

    login(client, "admin@example.com")
    assert client.get(f"/chat/{reply.session_id}").status_code == 200
    answered = htmx_post(
        client,
        f"/chat/{reply.session_id}/messages/{reply.id}/tool-result",
        {"call_id": stored["id"], "content": "sunny"},
    )
    assert answered.status_code == 200, answered.get_data(as_text=True)[-500:]


def test_two_calls_sharing_one_id_get_ids_of_their_own(app, signed_in):
    calls = [{"id": "same", "name": "get_weather", "args": '{"city": "Paris"}'},
             {"id": "same", "name": "get_weather", "args": '{"city": "Rome"}'}]  # fmt: skip
    reply, _ = ask_with_weather_tool(app, signed_in, streamed_reply("", calls))
    assert [call["id"] for call in reply.tool_calls] == ["same", f"call_{reply.id}_1"]
