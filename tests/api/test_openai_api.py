"""The OpenAI-compatible API, driven by the official `openai` client against Toolsmith on a real loopback
HTTP server: tokens from the account page, models, completions (plain, streamed, tool calls), errors."""

from __future__ import annotations

import json
import re

import openai
import pytest

from app.extensions import db
from app.models import ApiRequest, ApiToken, LLMModel, User
from app.serving.tool_schema import check_tool_call
from tests.conftest import post_form

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
OSLO = [{"role": "user", "content": "What's the weather in Oslo?"}]
DEFAULT = "SmolLM2-135M-Instruct"


def create_token(client, name: str = "laptop") -> str:
    response = post_form(client, "/auth/api-tokens", {"name": name})
    assert response.status_code == 200, response.get_data(as_text=True)[-2000:]
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    title, body = page.split("</title>", 1)
    assert "ts_" not in title and "<section" not in title  # the tab and the history keep a title
    match = re.search(r"<code class=\"token\">(ts_[A-Za-z0-9_-]+)</code>", body.split("<body", 1)[1])
    assert match, "the new token is shown once on the page"
    assert 'id="new-api-token"' in body and "Create a token" in body
    return match.group(1)


def openai_client(server_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server_url}/v1", api_key=token, max_retries=0, timeout=120)


def test_a_token_from_the_account_page_drives_the_official_client(
    app, signed_in, default_model_id, server_url
):
    client, user = signed_in()
    token = create_token(client)
    with app.app_context():
        (row,) = db.session.execute(db.select(ApiToken)).scalars()
        assert token not in (row.token_hash, row.prefix) and row.prefix == token[:10]  # only a hash at rest
    page = client.get("/auth/password").get_data(as_text=True)
    assert token not in page and token[:10] in page  # never shown again, only its prefix

    api = openai_client(server_url, token)
    assert DEFAULT in [model.id for model in api.models.list()]

    reply = api.chat.completions.create(
        model=DEFAULT, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, temperature=0
    )
    assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    called = api.chat.completions.create(
        model=DEFAULT, messages=OSLO, tools=[WEATHER], tool_choice="required", max_tokens=64, temperature=0
    )
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and call.id
    assert check_tool_call([WEATHER], call.function.name, arguments) == []  # the grammar's promise
    assert "<tool_call>" not in (choice.message.content or "")
    with app.app_context():
        assert db.session.get(ApiToken, row.id).last_used_at is not None
        logged = list(db.session.execute(db.select(ApiRequest).order_by(ApiRequest.id)).scalars())
    # Both answers are in the request log, with the figures the Analytics page shows.
    assert [(r.status, r.tool_calls, r.tool_calls_valid, r.constrained) for r in logged] == [
        ("complete", 0, None, None),
        ("complete", 1, True, True),
    ]
    assert all(r.completion_tokens and r.latency_ms > 0 and r.owner_id == user.id for r in logged)
    account = client.get("/auth/password").get_data(as_text=True)
    assert re.search(r"<td>2</td>", account)  # answers served with this token
    analytics = client.get("/analytics/").get_data(as_text=True)
    assert DEFAULT in analytics and "OpenAI-compatible API" in analytics


def test_streaming_text_and_a_streamed_tool_call(app, signed_in, default_model_id, server_url):
    client, _ = signed_in()
    api = openai_client(server_url, create_token(client))
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in api.chat.completions.create(
            model=DEFAULT,
            messages=[{"role": "user", "content": "Count to five."}],
            max_tokens=16,
            temperature=0,
            stream=True,
        )
    ]
    assert len(pieces) > 2 and "".join(pieces).strip()

    # Greedy: sampled at the default temperature 1.0 the 135M model can spend all 64 tokens inside the
    # call's strings, and a cut call is (rightly) no call: that made this test fail now and then.
    chunks = list(
        api.chat.completions.create(
            model=DEFAULT,
            messages=OSLO,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=64,
            temperature=0,
            stream=True,
        )
    )
    calls = [call for chunk in chunks for call in (chunk.choices[0].delta.tool_calls or [])]
    assert [call.function.name for call in calls] == ["get_weather"]
    assert "city" in json.loads(calls[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any("<tool_call>" in (chunk.choices[0].delta.content or "") for chunk in chunks)
    with app.app_context():
        logged = list(db.session.execute(db.select(ApiRequest).order_by(ApiRequest.id)).scalars())
    assert [(r.streamed, r.tool_calls, r.tool_calls_valid) for r in logged] == [
        (True, 0, None),
        (True, 1, True),
    ]
    assert all(r.ttft_ms is not None and r.ttft_ms <= r.latency_ms for r in logged)


def test_bad_requests_get_openai_errors(app, signed_in, default_model_id, server_url):
    client, _ = signed_in()
    token = create_token(client)
    api = openai_client(server_url, token)
    with pytest.raises(openai.NotFoundError, match="No model named"):
        api.chat.completions.create(model="gpt-9", messages=OSLO)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.chat.completions.create(model=DEFAULT, messages=OSLO, temperature=5)
    with pytest.raises(openai.BadRequestError, match="Invalid tools"):
        api.chat.completions.create(
            model=DEFAULT, messages=OSLO, tools=[{"type": "function", "function": {}}]
        )
    with pytest.raises(openai.BadRequestError, match="not among the tools"):
        api.chat.completions.create(
            model=DEFAULT,
            messages=OSLO,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "x"}},
        )
    for unsupported, reason in [
        ({"n": 2}, "only one choice"),
        ({"logprobs": True}, "log-probabilities are not returned"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences"),
        ({"stop": ""}, "1 to 100 characters"),
        ({"presence_penalty": 2.5}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
    ]:
        with pytest.raises(openai.BadRequestError, match=reason):
            api.chat.completions.create(model=DEFAULT, messages=OSLO, max_tokens=4, **unsupported)
    with pytest.raises(openai.AuthenticationError):
        openai_client(server_url, "ts_not-a-real-token").models.list()
    raw = client.post("/v1/chat/completions", data="{not json", headers={"Authorization": f"Bearer {token}"})
    assert raw.status_code == 400 and raw.get_json()["error"]["type"] == "invalid_request_error"


def test_stop_sequences_end_the_reply_plain_and_streamed(app, signed_in, default_model_id, server_url):
    client, _ = signed_in()
    api = openai_client(server_url, create_token(client))
    paris = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    ask = {"model": DEFAULT, "messages": paris, "max_tokens": 40, "temperature": 0}
    full = api.chat.completions.create(**ask).choices[0].message.content
    assert "Paris" in full  # the pinned answer, so the stop has something to cut
    cut = api.chat.completions.create(**ask, stop="Paris").choices[0]
    assert cut.finish_reason == "stop" and "Paris" not in (cut.message.content or "")
    assert full.startswith((cut.message.content or "").rstrip())
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in api.chat.completions.create(**ask, stop=["nowhere", "Paris"], stream=True)
        if chunk.choices
    )
    assert streamed == cut.message.content
    # null means "not set", as OpenAI's API takes it from clients that send every field
    raw = client.post(
        "/v1/chat/completions",
        json={**ask, "stop": None, "presence_penalty": None, "frequency_penalty": None, "n": None},
        headers={"Authorization": f"Bearer {api.api_key}"},
    )
    assert raw.status_code == 200 and raw.get_json()["choices"][0]["message"]["content"] == full


def test_the_session_cookie_is_not_an_api_key_and_revoked_or_disabled_tokens_stop_working(
    app, signed_in, default_model_id, server_url
):
    client, user = signed_in()
    token = create_token(client)
    # A signed-in browser (cookie, no bearer) gets nothing: no page can call the API on its visitor's behalf.
    response = client.post("/v1/chat/completions", json={"model": DEFAULT, "messages": OSLO})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    with app.app_context():
        token_id = db.session.execute(db.select(ApiToken.id)).scalar_one()
    assert post_form(client, f"/auth/api-tokens/{token_id}/revoke").status_code == 302
    with pytest.raises(openai.AuthenticationError):
        openai_client(server_url, token).models.list()

    token = create_token(client, "second")
    with app.app_context():
        db.session.get(User, user.id).is_disabled = True
        db.session.commit()
    with pytest.raises(openai.AuthenticationError):
        openai_client(server_url, token).models.list()


def test_tokens_only_reach_their_owners_models(app, signed_in, default_model_id, server_url):
    bob, bob_user = signed_in("bob@example.com")
    with app.app_context():
        db.session.add(
            LLMModel(owner_id=bob_user.id, name="bob-private", provider="local_gguf", gguf_path="/x.gguf")
        )
        db.session.commit()
    bob_api = openai_client(server_url, create_token(bob))
    assert "bob-private" in [model.id for model in bob_api.models.list()]
    assert bob_api.models.retrieve("bob-private").owned_by == "you"
    assert bob_api.models.retrieve("SmolLM2-135M-Instruct").owned_by == "toolsmith"

    alice, _ = signed_in("alice@example.com")
    alice_token = create_token(alice)
    alice_api = openai_client(server_url, alice_token)
    assert "bob-private" not in [model.id for model in alice_api.models.list()]
    with pytest.raises(openai.NotFoundError):
        alice_api.chat.completions.create(model="bob-private", messages=OSLO)
    with pytest.raises(openai.NotFoundError):
        alice_api.models.retrieve("bob-private")
    # Alice cannot revoke Bob's token either.
    with app.app_context():
        bobs = db.session.execute(db.select(ApiToken).where(ApiToken.owner_id == bob_user.id)).scalar_one()
    assert post_form(alice, f"/auth/api-tokens/{bobs.id}/revoke").status_code == 404


def test_rate_limit_per_token_answers_429_in_openais_shape(app, signed_in, default_model_id):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    client, _ = signed_in()
    headers = {"Authorization": f"Bearer {create_token(client)}"}
    statuses = [client.get("/v1/models", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get("/v1/models", headers=headers).get_json()["error"]
    assert (refused["type"], refused["code"]) == ("rate_limit_error", "rate_limit_exceeded")


def test_respelling_the_header_does_not_escape_the_tokens_limit(app, signed_in, default_model_id):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    client, _ = signed_in()
    token = create_token(client)
    spellings = [
        f"Bearer {token}",
        f"bearer {token}",
        f"BEARER {token}  ",
        f"bEaReR  {token}",
        f"Bearer {token} ",
    ]
    statuses = [client.get("/v1/models", headers={"Authorization": h}).status_code for h in spellings]
    assert statuses == [200, 200, 429, 429, 429]


def test_token_names_are_required_and_csrf_protected(app, signed_in):
    client, _ = signed_in()
    assert post_form(client, "/auth/api-tokens", {"name": "  "}).status_code == 422
    assert client.post("/auth/api-tokens", data={"name": "x"}).status_code == 400
    with app.app_context():
        assert db.session.execute(db.select(ApiToken)).first() is None


def test_a_tool_result_round_trip_gets_an_answer_in_words(app, signed_in, default_model_id, server_url):
    client, _ = signed_in()
    api = openai_client(server_url, create_token(client))
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    messages = [
        *OSLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 7, "unit": "celsius"}'},
    ]
    reply = api.chat.completions.create(
        model=DEFAULT, messages=messages, tools=[WEATHER], max_tokens=48, temperature=0
    )
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert choice.message.content or choice.message.tool_calls  # the auto grammar: words or one valid call
    for made in choice.message.tool_calls or []:
        assert check_tool_call([WEATHER], made.function.name, json.loads(made.function.arguments)) == []


def test_a_call_tag_split_across_tokens_never_leaks_into_the_streamed_text():
    """SmolLM2 writes "Sure.<tool_call>" as "Sure", ".<", "tool", "_", "call", ">": the text before the
    tag streams, the tag and the call do not, and the call comes whole at the end."""
    from app.api.routes import _sse
    from app.serving.types import ChatResult, ToolCall

    class Log:
        def write(self, result=None, failure=None):
            self.result, self.failure = result, failure

    call = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    pieces = ["Sure", ".<", "tool", "_", "call", ">", call, "</tool_call>"]
    text = "".join(pieces)
    result = ChatResult(
        text, 20, 12, 0.3, 0.05, "stop", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]
    )
    events = [
        e
        for e in _sse(iter([*pieces, result]), "c1", "m", Log(), tools_offered=True)
        if e.startswith("data: {")
    ]
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in events]
    streamed = "".join(d.get("content") or "" for d in deltas)
    assert streamed == "Sure." and "<" not in streamed
    (calls,) = [d["tool_calls"] for d in deltas if d.get("tool_calls")]
    assert calls[0]["function"]["name"] == "get_weather"
    # Plain text with a "<" in it streams on, once it can no longer be the tag.
    plain = ChatResult("a <b> c", 5, 3, 0.1, 0.01, "stop")
    events = [
        e
        for e in _sse(iter(["a <", "b> c", plain]), "c2", "m", Log(), tools_offered=True)
        if e.startswith("data: {")
    ]
    texts = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events]
    assert "".join(t or "" for t in texts) == "a <b> c" and texts[1] == "a "


def test_a_stream_the_client_leaves_or_the_model_breaks_is_still_logged(app):
    from app.api.routes import _sse
    from app.serving.types import ChatResult

    class Log:
        def __init__(self):
            self.writes = []

        def write(self, result=None, failure=None, stopped=False):
            self.writes.append((result, failure, stopped))

    def pieces():
        yield from ["one ", "two ", "three "]
        yield ChatResult("one two three ", 5, 3, 0.1, 0.01, "stop")

    left = Log()
    stream = _sse(pieces(), "c1", "m", left)
    for _ in range(3):
        next(stream)
    stream.close()  # the client disconnected mid-reply
    assert left.writes == [(None, None, True)]

    def breaking():
        yield "partial "
        raise RuntimeError("llama_decode returned -1")

    broken = Log()
    with app.app_context():  # the failure is logged through the app's logger
        events = list(_sse(breaking(), "c2", "m", broken))
    assert broken.writes == [(None, "The model failed while writing (RuntimeError).", False)]
    assert '"code": "model_error"' in events[-2] and events[-1] == "data: [DONE]\n\n"


def test_a_conversation_past_the_context_is_a_400_the_client_does_not_retry(
    app, signed_in, default_model_id, server_url
):
    client, _ = signed_in()
    # The official client with its default retries: a 5xx would be sent three times.
    api = openai.OpenAI(base_url=f"{server_url}/v1", api_key=create_token(client), timeout=120)
    too_long = [{"role": "user", "content": "word " * 6000}]
    with pytest.raises(openai.BadRequestError) as caught:
        api.chat.completions.create(model=DEFAULT, messages=too_long, max_tokens=2)
    assert (
        caught.value.code == "context_length_exceeded" and "too long for this model" in caught.value.message
    )
    # Streamed, the refusal comes before any byte of the stream: the same 400, not an error event.
    with pytest.raises(openai.BadRequestError) as streamed:
        api.chat.completions.create(model=DEFAULT, messages=too_long, max_tokens=2, stream=True)
    assert streamed.value.code == "context_length_exceeded" and "too long" in streamed.value.message
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ApiRequest)).scalar() == 2


def test_a_models_created_time_is_utc_whatever_the_servers_time_zone(
    app, signed_in, default_model_id, monkeypatch
):
    import calendar
    import time

    from tests.test_hostile_input import api_token

    client, _ = signed_in()
    headers = {"Authorization": f"Bearer {api_token(client)}"}
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        listed = client.get("/v1/models", headers=headers).get_json()["data"]
        one = client.get("/v1/models/SmolLM2-135M-Instruct", headers=headers).get_json()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    with app.app_context():
        stored = db.session.get(LLMModel, default_model_id).created_at
    (entry,) = [model for model in listed if model["id"] == "SmolLM2-135M-Instruct"]
    assert entry["created"] == one["created"] == calendar.timegm(stored.utctimetuple())


def test_a_model_named_like_a_global_one_keeps_every_listed_id_unique_and_reachable(
    app, signed_in, default_model_id
):
    from tests.test_hostile_input import api_token

    client, user = signed_in()
    with app.app_context():
        own = LLMModel(
            owner_id=user.id, name="SmolLM2-135M-Instruct", provider="local_gguf", gguf_path="/x.gguf"
        )
        db.session.add(own)
        db.session.commit()
        own_id = own.id
    headers = {"Authorization": f"Bearer {api_token(client)}"}
    listed = client.get("/v1/models", headers=headers).get_json()["data"]
    ids = [model["id"] for model in listed]
    assert len(ids) == len(set(ids))
    assert {"SmolLM2-135M-Instruct", str(default_model_id)} <= set(ids)
    by_name = client.get("/v1/models/SmolLM2-135M-Instruct", headers=headers).get_json()
    assert by_name["owned_by"] == "you" and own_id != default_model_id
    by_id = client.get(f"/v1/models/{default_model_id}", headers=headers).get_json()
    assert by_id["owned_by"] == "toolsmith" and by_id["id"] == str(default_model_id)
