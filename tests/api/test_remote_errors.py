"""A remote model's HTTP errors through the API: what the caller must fix stays a 4xx (the official client
does not retry it), a rate limit stays a 429 with the server's Retry-After, and the studio's own setup
(a refused key, a server failing) is a 502. Real loopback servers on both sides."""

from __future__ import annotations

import json

import openai
import pytest

from app.extensions import db
from app.models import ApiRequest, LLMModel
from tests.api.test_openai_api import create_token
from tests.llama_server import HTTPAnswer, serve_http

ASK = [{"role": "user", "content": "Hi"}]
JSON = {"Content-Type": "application/json"}


def _error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> HTTPAnswer:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return HTTPAnswer(status, json.dumps(body), {**JSON, **(headers or {})})


def _chunk(delta: dict, finish_reason: str | None = None) -> dict:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


CUT_CALL = [  # a call the token limit cut inside its arguments
    _chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Par'}}]}),
    _chunk({}, "length"),
]  # fmt: skip
SSE_CUT_CALL = "".join(f"data: {json.dumps(event)}\n\n" for event in CUT_CALL) + "data: [DONE]\n\n"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


ANSWERS = {
    "too_long": _error(400, "This model's maximum context length is 8 tokens.", "context_length_exceeded"),
    "unprocessable": _error(422, "temperature: must be at most 2"),
    "rate_limited": _error(429, "Slow down.", "rate_limit_exceeded", {"Retry-After": "600"}),
    "bad_key": _error(401, "Incorrect API key provided.", "invalid_api_key"),
    "broken": HTTPAnswer(500, "Internal Server Error", {"Content-Type": "text/plain"}),
    "cut_call": HTTPAnswer(200, SSE_CUT_CALL, {"Content-Type": "text/event-stream"}),
}


@pytest.fixture
def remote_api(app, signed_in, server_url):
    """(official client with its default retries, requests the remote server saw) for a global remote
    model named after each answer above."""
    client, _ = signed_in("admin@example.com")
    seen = []

    def answer(request):
        return ANSWERS[json.loads(request.body)["model"]]

    with serve_http(answer, seen) as remote_url:
        with app.app_context():
            for name in ANSWERS:
                url = f"{remote_url}/v1"
                db.session.add(LLMModel(name=name, provider="openai_compatible", base_url=url, model_id=name))
            db.session.commit()
        # Default retries on purpose: a 5xx or 429 is sent again, a 400 never.
        api = openai.OpenAI(base_url=f"{server_url}/v1", api_key=create_token(client), timeout=60)
        yield api, seen


def _asked(seen, model: str) -> int:
    return sum(json.loads(request.body)["model"] == model for request in seen)


def test_a_request_the_remote_server_rejects_is_the_callers_400(app, remote_api):
    api, seen = remote_api
    with pytest.raises(openai.BadRequestError) as too_long:
        api.chat.completions.create(model="too_long", messages=ASK)
    assert too_long.value.code == "context_length_exceeded"
    assert "maximum context length is 8 tokens" in too_long.value.message
    with pytest.raises(openai.BadRequestError) as unprocessable:
        api.chat.completions.create(model="unprocessable", messages=ASK)
    assert unprocessable.value.code == "invalid_request"
    assert "must be at most 2" in unprocessable.value.message
    # Neither was retried: the remote server saw each once (its stream, then the whole ask, at most).
    assert _asked(seen, "too_long") <= 2 and _asked(seen, "unprocessable") <= 2
    with app.app_context():
        failures = db.session.execute(db.select(ApiRequest.error)).scalars().all()
    assert len(failures) == 2 and all(failures)


def test_a_remote_rate_limit_is_a_429_with_its_retry_after(remote_api):
    api, _ = remote_api
    with pytest.raises(openai.RateLimitError) as caught:
        api.with_options(max_retries=0).chat.completions.create(model="rate_limited", messages=ASK)
    assert caught.value.status_code == 429 and caught.value.code == "rate_limit_exceeded"
    # The app's own limiter adds its window (a minute) and keeps the longer of the two waits.
    assert 590 <= int(caught.value.response.headers["Retry-After"]) <= 600
    assert "Slow down" in caught.value.message


SETUP_FAILURES = [("bad_key", "wants an API key (HTTP 401)"), ("broken", "HTTP 500")]


@pytest.mark.parametrize(("model", "said"), SETUP_FAILURES)
def test_the_studios_own_setup_failing_is_a_502(remote_api, model, said):
    api, _ = remote_api
    with pytest.raises(openai.InternalServerError) as caught:
        api.with_options(max_retries=0).chat.completions.create(model=model, messages=ASK)
    assert caught.value.status_code == 502 and said in caught.value.message


def test_streamed_a_refusal_is_the_same_status_before_any_byte(remote_api):
    """Not HTTP 200 and an error event (a 502 to the openai SDK, which it retries): the remote server
    answers before the first token, so the stream is refused with a real status and body."""
    api, _ = remote_api
    with pytest.raises(openai.BadRequestError) as caught:
        api.chat.completions.create(model="too_long", messages=ASK, stream=True)
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.RateLimitError) as limited:
        api.with_options(max_retries=0).chat.completions.create(
            model="rate_limited", messages=ASK, stream=True
        )
    assert 590 <= int(limited.value.response.headers["Retry-After"]) <= 600


def test_a_remote_call_cut_in_its_arguments_is_passed_on_and_counted_invalid(app, remote_api):
    api, _ = remote_api
    reply = api.chat.completions.create(model="cut_call", messages=ASK, tools=[WEATHER])
    (call,) = reply.choices[0].message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9",
        "get_weather",
        '{"city": "Par',
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    with app.app_context():
        (row,) = db.session.execute(db.select(ApiRequest)).scalars()
        assert (row.tool_calls, row.tool_calls_valid, row.status) == (1, False, "complete")
