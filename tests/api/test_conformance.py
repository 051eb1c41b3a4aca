"""Where OpenAI's API reference and its clients expect something exact: cut-off calls, stream options,
parameter ranges, content parts, tool_choice, and refusals that come before the stream."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from app.serving.tool_schema import check_tool_call
from tests.api.test_openai_api import DEFAULT, OSLO, WEATHER, create_token, openai_client


@pytest.fixture
def api(signed_in, default_model_id, server_url):
    client, _ = signed_in()
    return openai_client(server_url, create_token(client))


def _post(api: openai.OpenAI, body: dict) -> httpx.Response:
    """The raw request, for what the SDK would refuse to send or would parse away."""
    headers = {"Authorization": f"Bearer {api.api_key}"}
    return httpx.post(f"{api.base_url}chat/completions", json=body, headers=headers, timeout=120)


@pytest.mark.parametrize("max_tokens", [6, 20])
def test_a_call_cut_at_max_tokens_is_never_markup_in_the_content(api, max_tokens):
    """An agent takes content for the final answer: a cut call comes as OpenAI sends one, a `tool_calls`
    entry with the arguments as far as they got and finish_reason "length" (or nothing, when not even the
    name was written), never as `<tool_call>` text."""
    ask = {"model": DEFAULT, "messages": OSLO, "tools": [WEATHER], "tool_choice": "required"}
    reply = api.chat.completions.create(**ask, max_tokens=max_tokens, temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "length" and not choice.message.content
    streamed = list(api.chat.completions.create(**ask, max_tokens=max_tokens, temperature=0, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert "<" not in text and streamed[-1].choices[0].finish_reason == "length"
    calls = choice.message.tool_calls or []
    if max_tokens == 20:  # past the name, into the arguments
        [call] = calls
        assert call.function.name == "get_weather" and call.function.arguments.startswith("{")
        [[streamed_call]] = [c.choices[0].delta.tool_calls for c in streamed if c.choices[0].delta.tool_calls]
        assert streamed_call.function.arguments == call.function.arguments
    else:
        assert calls == []


def test_a_stop_sequence_does_not_cut_a_forced_call(api):
    reply = api.chat.completions.create(
        model=DEFAULT, messages=OSLO, tools=[WEATHER], tool_choice="required", stop=['"'], max_tokens=64
    )
    choice = reply.choices[0]
    [call] = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert check_tool_call([WEATHER], call.function.name, json.loads(call.function.arguments)) == []


def test_stream_options_include_usage_ends_with_a_usage_chunk_without_choices(api):
    ask = {"model": DEFAULT, "messages": OSLO, "max_tokens": 8, "stream": True}
    chunks = list(api.chat.completions.create(**ask, stream_options={"include_usage": True}))
    *before, last = chunks
    assert last.choices == [] and last.usage.completion_tokens == 8
    assert all(chunk.usage is None for chunk in before) and before[-1].choices[0].finish_reason == "length"
    # Not asked: the usage rides on the finishing chunk, as before (the SDK's .stream() reads it there).
    plain = list(api.chat.completions.create(**ask))
    assert plain[-1].choices[0].finish_reason == "length" and plain[-1].usage.completion_tokens == 8


def test_text_without_tools_streams_at_once_even_when_it_looks_like_json():
    """Only a reply that may be a call is held back until its end, and with no tools none can be."""
    from app.api.routes import _sse
    from app.serving.types import ChatResult

    class Log:
        def write(self, result=None, failure=None, stopped=False):
            pass

    result = ChatResult('{"a": 1}', 5, 3, 0.1, 0.01, "stop")
    events = [e for e in _sse(iter(["{", '"a"', ": 1}", result]), "c", "m", Log()) if e.startswith("data: {")]
    contents = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events]
    assert contents[1:4] == ["{", '"a"', ": 1}"]


def test_values_openai_takes_are_taken(api):
    for extra in ({"top_p": 0}, {"seed": -1}, {"seed": 2**40}, {"tool_choice": "auto"}):
        reply = _post(api, {"model": DEFAULT, "messages": OSLO, "max_tokens": 2, **extra})
        assert reply.status_code == 200, (extra, reply.text)
    # The flat form of OpenAI's newer Responses API names the function too.
    forced = {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}}
    reply = _post(api, {"model": DEFAULT, "messages": OSLO, "max_tokens": 48, **forced})
    assert reply.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "only text parts"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "text"),
        ({"messages": [{"role": "user", "content": None}]}, "a user message needs content"),
        ({"messages": [{"role": "user"}]}, "a user message needs content"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"tool_choice": "required"}, "offers no tools"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "offers no tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": {}}},
         "'allowed_tools' is not supported"),
    ],
)  # fmt: skip
def test_what_would_be_silently_wrong_is_a_clear_400(api, change, said):
    reply = _post(api, {"model": DEFAULT, "messages": OSLO, "max_tokens": 2, **change})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and said in error["message"], error


def test_a_validation_error_names_its_field_as_openais_param(api):
    too_hot = _post(api, {"model": DEFAULT, "messages": OSLO, "temperature": 5})
    assert too_hot.status_code == 400 and too_hot.json()["error"]["param"] == "temperature"
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    assert _post(api, {"model": DEFAULT, "messages": image}).json()["error"]["param"] == "messages[0].content"


def test_a_nan_temperature_is_not_a_number_not_too_hot(api):
    body = '{"model": "' + DEFAULT + '", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'
    headers = {"Authorization": f"Bearer {api.api_key}", "Content-Type": "application/json"}
    reply = httpx.post(f"{api.base_url}chat/completions", content=body, headers=headers, timeout=60)
    assert reply.status_code == 400 and "finite" in reply.json()["error"]["message"], reply.text


def test_a_model_that_breaks_before_its_first_token_is_a_502_not_a_500(api, monkeypatch):
    """Fault injection (llama.cpp failing outright), as the mid-stream case in test_openai_api does."""
    import app.api.routes

    def breaking(*args, **kwargs):
        raise RuntimeError("llama_decode returned -1")
        yield  # a generator, as stream_generate is

    monkeypatch.setattr(app.api.routes, "stream_generate", breaking)
    reply = _post(api, {"model": DEFAULT, "messages": OSLO, "max_tokens": 2, "stream": True})
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["code"] == "model_error" and "RuntimeError" in error["message"]


def test_finish_reason_and_arguments_of_calls_written_as_text():
    """Calls parsed out of a reply's text (a remote model without native tools, say): a complete call with
    words after it is still a call; a cut one keeps every brace it got; a closed but broken one loses
    only the brace that closed the call object."""
    from app.api.routes import _message
    from app.serving.types import ChatResult, ToolCall

    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    done = ChatResult(
        call + "\nDone.", 20, 12, 0.3, 0.05, "stop", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]
    )
    message, finish = _message(done, tools_offered=True)
    assert finish == "tool_calls" and message["tool_calls"][0]["function"]["name"] == "get_weather"

    cut = ChatResult('<tool_call>{"name": "f", "arguments": {"a": {"b": 1}}', 20, 12, 0.3, 0.05, "length")
    message, finish = _message(cut, tools_offered=True)
    assert finish == "length" and message["tool_calls"][0]["function"]["arguments"] == '{"a": {"b": 1}}'

    broken = ChatResult(
        '<tool_call>{"name": "f", "arguments": {"a": 1,}}</tool_call>', 20, 12, 0.3, 0.05, "stop"
    )
    message, finish = _message(broken, tools_offered=True)
    assert finish == "tool_calls" and message["tool_calls"][0]["function"]["arguments"] == '{"a": 1,}'


def test_param_stops_at_a_union_branch():
    from app.api.schema import ChatRequest, ValidationError, first_param

    for body, expected in (
        ({"model": "m", "messages": OSLO, "stop": 5}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ):
        try:
            ChatRequest.model_validate(body)
        except ValidationError as exc:
            assert first_param(exc) == expected
        else:
            raise AssertionError(body)
