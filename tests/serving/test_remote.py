"""Remote providers through the real openai and huggingface_hub clients, against a real llama.cpp server.

Failures a real deployment meets (refused connections, 401s, HTML pages, slow servers, redirects) come from
small stdlib HTTP servers; none of our code is replaced.
"""

from __future__ import annotations

import json
import time

import pytest

from app.serving import remote
from app.serving.remote import RemoteEndpoint
from app.serving.types import ChatResult, SamplingParams, ServingError, ToolCall
from tests.llama_server import HTTPAnswer, serve_http
from tests.serving.conftest import LLAMA_SERVER_ALIAS

# The 135M model is brittle: this exact prompt was seen to answer correctly; the bare question rambles.
PARIS_PROMPT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
GREEDY = SamplingParams(temperature=0.0, max_tokens=40)
SECRET_KEY = "sk-toolsmith-test-0123456789abcdef"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def openai_endpoint(base_url: str, **overrides) -> RemoteEndpoint:
    settings = {"model_id": LLAMA_SERVER_ALIAS, "allow_private": True, "timeout_s": 30.0, **overrides}
    return RemoteEndpoint(provider="openai_compatible", base_url=base_url, **settings)


def hf_endpoint(base_url: str, **overrides) -> RemoteEndpoint:
    settings = {"model_id": LLAMA_SERVER_ALIAS, "allow_private": True, "timeout_s": 30.0, **overrides}
    return RemoteEndpoint(provider="hf_inference", base_url=base_url, **settings)


ENDPOINT_KINDS = {"openai": openai_endpoint, "hf": hf_endpoint}


def event_stream(*chunks: dict) -> HTTPAnswer:
    """An OpenAI-style server-sent-events answer, as vLLM or OpenAI would stream it."""
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return HTTPAnswer(200, body, {"Content-Type": "text/event-stream"})


def chunk(delta: dict | None = None, finish_reason: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        "usage": usage,
    }


# --- the real llama.cpp server --------------------------------------------------------------------


def test_connection_succeeds(llama_server_url):
    check = remote.test_connection(openai_endpoint(llama_server_url))
    assert check.ok, check.message
    assert "smollm2" in check.message
    assert check.latency_s is not None and check.latency_s > 0


def test_connection_refused_on_a_wrong_port(dead_port):
    check = remote.test_connection(openai_endpoint(f"http://127.0.0.1:{dead_port}/v1"))
    assert not check.ok
    assert "Connection refused at 127.0.0.1:" in check.message and "is the server running?" in check.message


def test_wrong_model_id_lists_what_the_server_offers(llama_server_url):
    # llama.cpp's server would silently answer with its own model; the listing catches the typo.
    check = remote.test_connection(openai_endpoint(llama_server_url, model_id="smollm3"))
    assert not check.ok
    assert check.message == "The server does not offer model 'smollm3'. It offers: smollm2."


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_loopback_is_refused_for_non_admins(llama_server_url, kind):
    check = remote.test_connection(ENDPOINT_KINDS[kind](llama_server_url, allow_private=False))
    assert not check.ok
    assert "127.0.0.1 is a loopback/private address: only admins may use private endpoints" in check.message


def test_chat_answers_paris_with_figures(llama_server_url):
    result = remote.chat(openai_endpoint(llama_server_url), PARIS_PROMPT, GREEDY)
    assert "Paris" in result.text
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    # llama.cpp's server ignores stream_options.include_usage: the counts are estimates, and say so.
    assert result.usage_estimated
    assert 0 < result.time_to_first_token_s < result.latency_s
    assert result.finish_reason == "stop"
    assert not result.stopped_early and result.tool_calls == []


def test_streaming_yields_pieces_then_the_result(llama_server_url):
    items = list(remote.stream_chat(openai_endpoint(llama_server_url), PARIS_PROMPT, GREEDY))
    pieces, result = items[:-1], items[-1]
    assert isinstance(result, ChatResult)
    assert len(pieces) >= 3 and all(isinstance(piece, str) for piece in pieces)
    assert "".join(pieces) == result.text


def test_stop_button_closes_the_stream_early(llama_server_url):
    pieces: list[str] = []
    stream = remote.stream_chat(
        openai_endpoint(llama_server_url), PARIS_PROMPT, GREEDY, should_stop=lambda: len(pieces) >= 2
    )
    for item in stream:
        if isinstance(item, str):
            pieces.append(item)
        else:
            result = item
    assert result.stopped_early and result.finish_reason == "stopped"
    assert result.text == "".join(pieces) and len(pieces) == 2


@pytest.mark.parametrize("with_v1", [True, False], ids=["url-with-v1", "bare-url"])
def test_hf_inference_client_on_a_dedicated_endpoint_url(llama_server_url, with_v1):
    # InferenceClient appends /chat/completions to a URL ending in /v1 and /v1/chat/completions otherwise.
    base_url = llama_server_url if with_v1 else llama_server_url.removesuffix("/v1")
    endpoint = hf_endpoint(base_url)
    result = remote.chat(endpoint, PARIS_PROMPT, GREEDY)
    assert "Paris" in result.text
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert 0 < result.time_to_first_token_s < result.latency_s
    check = remote.test_connection(endpoint)
    assert check.ok, check.message


# --- servers that misbehave -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_non_json_answer_is_named(kind):
    page = HTTPAnswer(200, "<html><body>Please sign in</body></html>", {"Content-Type": "text/html"})
    with serve_http(lambda request: page) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1")
        check = remote.test_connection(endpoint)
        with pytest.raises(ServingError, match="The server's answer was not JSON"):
            remote.chat(endpoint, PARIS_PROMPT, GREEDY)
    assert not check.ok
    assert check.message.startswith("The server's answer was not JSON")


def refused_echoing_the_key(kind: str, before_key: str):
    """A 401 whose message quotes the Authorization header after `before_key`, as some real servers do:
    (the connection check, the chat's error, every text the user or a log could see)."""

    def reject(request):
        detail = before_key + request.headers["authorization"]
        return HTTPAnswer(
            401, json.dumps({"error": {"message": detail}}), {"Content-Type": "application/json"}
        )

    with serve_http(reject) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1", api_key=SECRET_KEY)
        check = remote.test_connection(endpoint)
        with pytest.raises(ServingError) as failed:
            remote.chat(endpoint, PARIS_PROMPT, GREEDY)
    texts = [check.message, repr(check), repr(endpoint), str(endpoint)]
    error: BaseException | None = failed.value
    while error is not None:
        texts += [str(error), repr(error)]
        error = error.__cause__ or error.__context__
    return check, failed.value, texts


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_refused_key_is_reported_without_the_key(kind):
    check, failed, texts = refused_echoing_the_key(kind, "Invalid API key in header: ")
    assert not check.ok
    assert check.message.startswith("The server refused the API key (HTTP 401): Invalid API key in header")
    assert str(failed).startswith("The server refused the API key (HTTP 401)")
    assert not any(SECRET_KEY in text for text in texts)


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_a_key_echoed_across_the_cut_of_a_long_error_is_still_masked(kind):
    # The key straddles the 200 characters of the body the user is shown.
    check, _, texts = refused_echoing_the_key(kind, "Request refused. " + "Check your account settings. " * 5)
    pieces = {SECRET_KEY[i : i + 10] for i in range(len(SECRET_KEY) - 9)}
    assert "Request refused" in check.message
    assert not any(piece in text for piece in pieces for text in texts), texts


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_slow_server_times_out(kind):
    def slow(request):
        time.sleep(3)
        return HTTPAnswer(200, "{}", {"Content-Type": "application/json"})

    with serve_http(slow) as base_url:
        started = time.monotonic()
        check = remote.test_connection(ENDPOINT_KINDS[kind](f"{base_url}/v1", timeout_s=1.0))
        elapsed = time.monotonic() - started
    assert not check.ok
    assert check.message.startswith("No answer within 1 s from 127.0.0.1:")
    assert elapsed < 2.5


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_redirect_to_cloud_metadata_is_refused(kind):
    redirect = HTTPAnswer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"})
    with serve_http(lambda request: redirect) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1")
        check = remote.test_connection(endpoint)
        with pytest.raises(ServingError, match="169.254.169.254 is a link-local / cloud metadata address"):
            remote.chat(endpoint, PARIS_PROMPT, GREEDY)
    assert not check.ok and "Toolsmith never connects there" in check.message


@pytest.mark.parametrize(
    ("status", "expected"), [(404, "not found (HTTP 404)"), (429, "(HTTP 429)"), (503, "(HTTP 503)")]
)
def test_http_errors_are_explained(status, expected):
    answer = HTTPAnswer(
        status, json.dumps({"error": {"message": "details here"}}), {"Content-Type": "application/json"}
    )
    with serve_http(lambda request: answer) as base_url:
        check = remote.test_connection(openai_endpoint(f"{base_url}/v1"))
    assert not check.ok
    assert expected in check.message and "details here" in check.message


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
@pytest.mark.parametrize(
    "event",
    [{"error": {"message": "CUDA out of memory", "type": "server_error"}}, {"error": "CUDA out of memory"}],
    ids=["openai-style", "tgi-style"],
)
def test_error_event_inside_the_stream_is_reported(kind, event):
    error_stream = HTTPAnswer(200, f"data: {json.dumps(event)}\n\n", {"Content-Type": "text/event-stream"})
    with serve_http(lambda request: error_stream) as base_url:
        with pytest.raises(ServingError) as failed:
            remote.chat(ENDPOINT_KINDS[kind](f"{base_url}/v1"), PARIS_PROMPT, GREEDY)
    assert str(failed.value) == "The server reported an error: CUDA out of memory."


def test_unresolvable_host_is_explained():
    check = remote.test_connection(openai_endpoint("http://nonexistent.invalid/v1"))
    assert not check.ok and check.message.startswith("Could not resolve host 'nonexistent.invalid'")


# --- streamed tool calls and usage, as vLLM / OpenAI send them ------------------------------------

TOOL_CALL_STREAM = (
    chunk({"role": "assistant", "content": None}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({}, finish_reason="tool_calls"),
    chunk(None, usage={"prompt_tokens": 42, "completion_tokens": 9, "total_tokens": 51}),
)


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_streamed_tool_calls_and_usage_come_back(kind):
    seen = []
    with serve_http(lambda request: event_stream(*TOOL_CALL_STREAM), seen) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1", model_id="qwen-tools")
        result = remote.chat(
            endpoint, [{"role": "user", "content": "Weather in Paris?"}], GREEDY, tools=[WEATHER_TOOL]
        )
    assert result.tool_calls == [ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")]
    assert result.finish_reason == "tool_calls"
    assert (result.prompt_tokens, result.completion_tokens, result.usage_estimated) == (42, 9, False)
    request = json.loads(seen[0].body)
    assert request["model"] == "qwen-tools" and request["tools"] == [WEATHER_TOOL]
    assert request["stream_options"] == {"include_usage": True}


def _call_delta(name: str | None = None, arguments: str | None = None, call_id: str | None = None) -> dict:
    function = {key: value for key, value in (("name", name), ("arguments", arguments)) if value is not None}
    delta = {"index": 0, "function": function}
    if call_id:
        delta |= {"id": call_id, "type": "function"}
    return chunk({"tool_calls": [delta]})


# How servers stream a call's name: whole once (OpenAI, vLLM), split before the arguments, or repeated
# whole in every delta. A split "a" + "a" is the name "aa"; a repeated "aa" is "aa" too.
NAME_STYLES = {
    "whole": [_call_delta("aa", "", "call_1"), _call_delta(None, '{"x": 1}')],
    "split": [_call_delta("a", None, "call_1"), _call_delta("a"), _call_delta(None, '{"x": 1}')],
    "repeated": [
        _call_delta("aa", "", "call_1"),
        _call_delta("aa", ""),
        _call_delta("aa", '{"x": '),
        _call_delta("aa", "1}"),
    ],
    "repeated_with_arguments_at_once": [_call_delta("aa", None, "call_1"), _call_delta("aa", '{"x": 1}')],
}


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
@pytest.mark.parametrize("style", NAME_STYLES)
def test_a_streamed_call_name_reads_the_same_however_the_server_splits_it(kind, style):
    tool = {"type": "function", "function": {"name": "aa", "parameters": {"type": "object"}}}
    stream = (*NAME_STYLES[style], chunk({}, finish_reason="tool_calls"))
    with serve_http(lambda request: event_stream(*stream)) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1", model_id="m")
        result = remote.chat(endpoint, [{"role": "user", "content": "go"}], GREEDY, tools=[tool])
    assert result.tool_calls == [ToolCall(name="aa", arguments={"x": 1}, id="call_1")]


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_a_structured_call_with_unreadable_arguments_is_kept_as_broken_not_dropped(kind):
    stream = (
        _call_delta("get_weather", "", "call_1"),
        _call_delta(None, '{"city": "Par'),  # cut at the token limit
        chunk({}, finish_reason="length"),
    )
    with serve_http(lambda request: event_stream(*stream)) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1", model_id="m")
        result = remote.chat(endpoint, [{"role": "user", "content": "go"}], GREEDY, tools=[WEATHER_TOOL])
    assert result.tool_calls == []
    assert result.broken_tool_calls == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Par'}]


def test_server_rejecting_stream_options_is_asked_again_without():
    def picky(request):
        if "stream_options" in json.loads(request.body):
            return HTTPAnswer(
                400,
                '{"error": {"message": "Unknown field: stream_options"}}',
                {"Content-Type": "application/json"},
            )
        return event_stream(chunk({"content": "Paris is the capital."}, finish_reason="stop"))

    with serve_http(picky) as base_url:
        result = remote.chat(openai_endpoint(f"{base_url}/v1"), PARIS_PROMPT, GREEDY)
    assert result.text == "Paris is the capital." and result.usage_estimated and result.completion_tokens > 0


def test_hf_without_a_key_never_sends_this_servers_own_token(monkeypatch):
    # huggingface_hub falls back to HF_TOKEN / the cached login: that must not reach a user's URL.
    monkeypatch.setenv("HF_TOKEN", "hf_this_servers_own_token")
    seen = []
    with serve_http(
        lambda request: event_stream(chunk({"content": "Paris"}, finish_reason="stop")), seen
    ) as base_url:
        result = remote.chat(hf_endpoint(base_url), PARIS_PROMPT, GREEDY)
        remote.chat(hf_endpoint(base_url, api_key=SECRET_KEY), PARIS_PROMPT, GREEDY)
    assert result.text == "Paris"
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert seen[0].path == "/v1/chat/completions"  # a bare URL gets /v1/chat/completions appended


def test_hf_router_needs_a_token():
    check = remote.test_connection(
        RemoteEndpoint("hf_inference", None, "HuggingFaceTB/SmolLM2-135M-Instruct")
    )
    assert not check.ok and "access token" in check.message


def test_endpoint_repr_hides_the_key():
    endpoint = openai_endpoint("http://127.0.0.1:1/v1", api_key=SECRET_KEY)
    assert SECRET_KEY not in repr(endpoint) and SECRET_KEY not in str(endpoint)


# --- empty streams: the error (or the answer) comes from asking the same request whole ---------------


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_a_prompt_longer_than_the_servers_context_says_so(llama_server_url, kind):
    # llama.cpp's server answers this streamed request with 200 and an empty stream; asked whole, it says why.
    endpoint = ENDPOINT_KINDS[kind](llama_server_url)
    too_long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ServingError, match=r"HTTP 400.*maximum context length is 2048 tokens"):
        remote.chat(endpoint, too_long, GREEDY)


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_a_server_whose_streaming_is_broken_still_answers(kind):
    seen = []

    def streams_nothing(request):
        if json.loads(request.body).get("stream"):
            return HTTPAnswer(200, "", {"Content-Type": "text/event-stream"})
        whole = {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
        }
        return HTTPAnswer(200, json.dumps(whole), {"Content-Type": "application/json"})

    with serve_http(streams_nothing, seen) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1", model_id="m")
        result = remote.chat(endpoint, [{"role": "user", "content": "Oslo?"}], GREEDY, tools=[WEATHER_TOOL])
    assert result.tool_calls == [ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="call_9")]
    assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (30, 7, "tool_calls")
    assert [json.loads(r.body).get("stream", False) for r in seen] == [True, False]


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_stop_sequences_and_penalties_are_sent_only_when_set(kind):
    seen = []
    answer = event_stream(chunk({"content": "Paris"}, finish_reason="stop"))
    with serve_http(lambda request: answer, seen) as base_url:
        endpoint = ENDPOINT_KINDS[kind](f"{base_url}/v1")
        tuned = SamplingParams(0.0, 1.0, 8, stop=("\n", "END"), presence_penalty=0.5, frequency_penalty=-0.25)
        remote.chat(endpoint, PARIS_PROMPT, tuned)
        remote.chat(endpoint, PARIS_PROMPT, GREEDY)
    sent, plain = (json.loads(request.body) for request in seen)
    assert sent["stop"] == ["\n", "END"]
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.25)
    assert all(plain.get(name) is None for name in ("stop", "presence_penalty", "frequency_penalty"))


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_a_real_server_ends_the_reply_at_a_stop_sequence(llama_server_url, kind):
    endpoint = ENDPOINT_KINDS[kind](llama_server_url)
    full = remote.chat(endpoint, PARIS_PROMPT, GREEDY).text
    assert "Paris" in full
    cut = remote.chat(endpoint, PARIS_PROMPT, SamplingParams(0.0, 1.0, 40, stop=("Paris",)))
    assert "Paris" not in cut.text and full.startswith(cut.text.rstrip()) and cut.finish_reason == "stop"


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "12 tokens", "completion_tokens": 5, "total_tokens": 17},
        {"prompt_tokens": -1000000, "completion_tokens": -7, "total_tokens": 17},
        {"prompt_tokens": 12, "completion_tokens": 2**40, "total_tokens": 17},
        {"prompt_tokens": True, "completion_tokens": 3.5, "total_tokens": 17},
    ],
)
def test_usage_that_is_no_token_count_is_estimated_instead(usage):
    stream = (chunk({"role": "assistant", "content": "Hello there"}), chunk({}, "stop"), chunk(usage=usage))
    with serve_http(lambda request: event_stream(*stream)) as base_url:
        result = remote.chat(openai_endpoint(f"{base_url}/v1", model_id="m"), PARIS_PROMPT, GREEDY)
    assert result.usage_estimated
    for count in (result.prompt_tokens, result.completion_tokens):
        assert isinstance(count, int) and not isinstance(count, bool) and 0 < count < 1000


def test_a_finish_reason_that_is_no_text_is_ignored():
    stream = (chunk({"role": "assistant", "content": "Hi"}), {**chunk({}), "choices": [
        {"index": 0, "delta": {}, "finish_reason": 7}]})  # fmt: skip
    with serve_http(lambda request: event_stream(*stream)) as base_url:
        result = remote.chat(openai_endpoint(f"{base_url}/v1", model_id="m"), PARIS_PROMPT, GREEDY)
    assert result.text == "Hi" and result.finish_reason is None


def test_a_key_cut_to_fewer_than_ten_characters_at_the_end_of_an_error_is_masked_too():
    from app.serving.remote_errors import mask_secret

    for kept in range(4, 10):
        text = "Request refused for key " + SECRET_KEY[:kept] + "…"
        assert mask_secret(text, SECRET_KEY) == "Request refused for key ***…", kept
    assert mask_secret("a plain sentence.", SECRET_KEY) == "a plain sentence."
    assert mask_secret("ends in sk-", SECRET_KEY) == "ends in sk-"  # three characters say nothing
