"""`response_format` on the OpenAI-compatible API: a local model answers in JSON (any object, or one that
matches a JSON Schema) because llama.cpp decodes under a grammar; what cannot be kept is refused."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from app.extensions import db
from app.models import ApiRequest, LLMModel
from tests.api.test_openai_api import DEFAULT, WEATHER, create_token, openai_client

WEATHER_REPORT = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "temperature_c": {"type": "integer"},
        "sky": {"type": "string", "enum": ["sunny", "cloudy", "rainy", "snowy"]},
    },
    "required": ["city", "temperature_c", "sky"],
}
ASK = [{"role": "user", "content": "Give me today's weather report for Oslo as JSON."}]
YES_OR_NO = 'Is Oslo in Norway? Answer in JSON: {"answer": "yes"} or {"answer": "no"}.'
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "report", "schema": WEATHER_REPORT, "strict": True},
}


def test_a_json_schema_answer_matches_the_schema_whole_and_streamed(
    app, signed_in, default_model_id, server_url
):
    client, _ = signed_in()
    api = openai_client(server_url, create_token(client))
    whole = api.chat.completions.create(
        model=DEFAULT, messages=ASK, response_format=SCHEMA_FORMAT, temperature=0, max_tokens=96
    )
    report = json.loads(whole.choices[0].message.content)
    jsonschema.validate(report, WEATHER_REPORT)
    assert set(report) == {"city", "temperature_c", "sky"}  # closed: no property beyond the schema's
    assert whole.choices[0].finish_reason == "stop" and not whole.choices[0].message.tool_calls

    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in api.chat.completions.create(
            model=DEFAULT,
            messages=ASK,
            response_format=SCHEMA_FORMAT,
            temperature=0,
            max_tokens=96,
            stream=True,
        )
    ]
    assert len([p for p in pieces if p]) > 3  # streamed as it is written, not held back as a possible call
    assert json.loads("".join(pieces)) == report  # greedy: the same answer either way

    # Any object: its length is the model's to choose (asked for a report, the 135M model repeats keys until
    # max_tokens cuts it, and cut JSON does not parse, as on OpenAI): a question with a short answer.
    any_object = api.chat.completions.create(
        model=DEFAULT,
        messages=[{"role": "user", "content": YES_OR_NO}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=400,
    )
    assert any_object.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(any_object.choices[0].message.content), dict)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ApiRequest)).scalar() == 3


def test_what_cannot_be_kept_is_refused_with_the_reason(app, signed_in, default_model_id, server_url):
    client, _ = signed_in("admin@example.com")
    with app.app_context():
        remote = LLMModel(
            name="remote-one", provider="openai_compatible", base_url="http://127.0.0.1:9/v1", model_id="x"
        )
        db.session.add(remote)
        db.session.commit()
    api = openai_client(server_url, create_token(client))
    cases = [
        ({"response_format": SCHEMA_FORMAT, "tools": [WEATHER]}, "not both"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "schema is required"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}},
            "cannot be turned",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": SCHEMA_FORMAT, "model": "remote-one"}, "remote model"),
    ]
    for extra, expected in cases:
        body = {"model": DEFAULT, "messages": ASK, **extra}
        with pytest.raises(openai.BadRequestError, match=expected):
            api.chat.completions.create(**body)
    with app.app_context():
        assert db.session.execute(db.select(ApiRequest)).first() is None  # refused before any generation


def test_a_json_answer_with_a_name_key_is_not_a_tool_call_when_no_tools_were_offered(app, default_model_id):
    """The grammar makes the local model answer `{"name": ..., "age": ...}`: with no tools offered that is
    the answer, not a call to a function named after the person."""
    from app.serving import generate
    from app.serving.grammar import json_grammar
    from app.serving.types import SamplingParams

    person = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    with app.app_context():
        model = db.session.get(LLMModel, default_model_id)
        result = generate(
            model,
            [{"role": "user", "content": "Describe a person as JSON."}],
            SamplingParams(temperature=0.0, max_tokens=48),
            None,
            grammar=json_grammar(person),
        )
    assert set(json.loads(result.text)) == {"name", "age"} and result.tool_calls == []
