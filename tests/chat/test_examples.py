"""Saving a chat reply, corrected, as a training example: a new dataset or one of the user's own."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from app.datasets.rows import validate_dpo_row, validate_sft_row
from app.extensions import db
from app.models import Dataset
from tests.chat.conftest import htmx_post, message_row, new_session, save_settings, send, stream_events
from tests.chat.test_tools import WEATHER_TOOL, attach_json_tools

FIXED_CALL = [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}]


@pytest.fixture
def weather_reply(app, signed_in, default_model_id):
    """Alice's session where the real default model called get_weather (constrained, tool choice required)."""
    client, user = signed_in()
    session_id = new_session(client, default_model_id)
    assert attach_json_tools(client, session_id, [WEATHER_TOOL]).status_code == 200
    save_settings(
        client, session_id, default_model_id, tool_choice="required", max_tokens=64, system_prompt="Be brief."
    )
    reply_id = send(client, session_id, "What's the weather in Oslo?")
    card = stream_events(client, reply_id)[-1][2]
    assert "Save as training example" in card
    return client, session_id, reply_id


def save(client, session_id: int, reply_id: int, **fields):
    data = {"dataset": "new", "new_name": "Weather fixes", "split": "train", "content": "", "calls": ""}
    data.update(fields)
    return htmx_post(client, f"/chat/{session_id}/messages/{reply_id}/example", data)


def stored(app, name: str | None = None) -> list[Dataset]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Dataset).order_by(Dataset.id)).scalars())
        for row in rows:
            db.session.expunge(row)
    return [r for r in rows if name is None or r.name == name]


def file_rows(dataset: Dataset) -> list[dict]:
    return [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]


def test_a_corrected_call_and_a_later_reply_become_rows_that_validate(app, weather_reply):
    client, session_id, reply_id = weather_reply
    form = client.get(f"/chat/{session_id}/messages/{reply_id}/example").get_data(as_text=True)
    call = message_row(app, reply_id).tool_calls[0]
    assert "Save as a training example" in form and "get_weather" in form and "the 1 tool offered" in form
    assert json.dumps(call["arguments"]["city"]) in html.unescape(form)  # the model's call, to correct

    saved = save(client, session_id, reply_id, calls=json.dumps(FIXED_CALL), split="eval")
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert "Saved as row 1 of" in saved.get_data(as_text=True)
    (dataset,) = stored(app)
    assert (dataset.name, dataset.kind, dataset.source, dataset.sample_count, dataset.eval_count) == (
        "Weather fixes",
        "sft",
        "chat",
        1,
        1,
    )
    (row,) = file_rows(dataset)
    assert validate_sft_row(row) == []
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][-1]["tool_calls"] == [{"type": "function", "function": FIXED_CALL[0]}]
    assert [t["function"]["name"] for t in row["tools"]] == ["get_weather"] and row["split"] == "eval"

    # Continue with the tool's result; the model answers in words; save that to the same dataset.
    result = htmx_post(
        client,
        f"/chat/{session_id}/messages/{reply_id}/tool-result",
        {"call_id": call["id"], "content": '{"temperature": 7}'},
    )
    follow_up = int(result.get_data(as_text=True).split('sse-connect="/chat/messages/')[1].split("/")[0])
    stream_events(client, follow_up)
    form = client.get(f"/chat/{session_id}/messages/{follow_up}/example").get_data(as_text=True)
    assert f'<option value="{dataset.id}" selected>' in form  # the dataset used last is picked again
    saved = save(client, session_id, follow_up, dataset=str(dataset.id), content="It is 7 °C in Oslo.")
    assert saved.status_code == 200 and "Saved as row 2 of" in saved.get_data(as_text=True)
    (dataset,) = stored(app)
    assert (dataset.sample_count, dataset.train_count, dataset.stats["with_call"]) == (2, 1, 2)
    second = file_rows(dataset)[1]
    assert validate_sft_row(second) == []
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert second["messages"][3] == {"role": "tool", "name": "get_weather", "content": '{"temperature": 7}'}
    assert second["messages"][-1] == {"role": "assistant", "content": "It is 7 °C in Oslo."}


WRONG_ANSWERS = [
    ({"calls": "[{oops"}, "The calls are not valid JSON"),
    ({"calls": '[{"name": "get_time", "arguments": {}}]'}, "get_time"),
    ({"calls": '[{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}]'}, "kelvin"),
    ({"calls": '[{"name": "get_weather", "arguments": []}]'}, "arguments must be a JSON object"),
    ({"calls": '"get_weather"'}, "The calls must be a list"),
    ({"calls": "", "content": "   "}, "The answer needs words or at least one call."),
    ({"calls": json.dumps(FIXED_CALL), "split": "test"}, "Not a valid choice"),
    ({"calls": json.dumps(FIXED_CALL), "dataset": "999999"}, "Pick one of your datasets"),
    ({"calls": json.dumps(FIXED_CALL), "content": "x" * 40_000}, "32000"),
]


def test_a_wrong_answer_is_refused_with_the_reason_and_nothing_is_written(app, weather_reply):
    client, session_id, reply_id = weather_reply
    for fields, expected in WRONG_ANSWERS:  # one reply for all cases: generating it is the slow part
        response = save(client, session_id, reply_id, **fields)
        assert response.status_code == 422, fields
        assert expected in response.get_data(as_text=True), fields
    assert stored(app) == []


def test_another_users_reply_and_dataset_are_out_of_reach(app, weather_reply, signed_in):
    client, session_id, reply_id = weather_reply
    assert save(client, session_id, reply_id, calls=json.dumps(FIXED_CALL)).status_code == 200
    (alices,) = stored(app)
    user_turn = reply_id - 1
    assert save(client, session_id, user_turn, content="hi").status_code == 422  # not a reply
    no_csrf = client.post(f"/chat/{session_id}/messages/{reply_id}/example", data={"content": "x"})
    assert no_csrf.status_code == 400

    mallory, _ = signed_in("mallory@example.com")
    assert mallory.get(f"/chat/{session_id}/messages/{reply_id}/example").status_code == 404
    assert save(mallory, session_id, reply_id, calls=json.dumps(FIXED_CALL)).status_code == 404
    # Mallory's own session cannot append to Alice's dataset either.
    mallory_session = new_session(mallory, message_row(app, reply_id).model_id)
    mallory_reply = send(mallory, mallory_session, "Hello")
    stream_events(mallory, mallory_reply)
    refused = save(mallory, mallory_session, mallory_reply, dataset=str(alices.id), content="Hi!")
    assert refused.status_code == 422 and "Pick one of your datasets" in refused.get_data(as_text=True)
    assert [d.sample_count for d in stored(app)] == [1]


def test_a_fixed_reply_becomes_a_preference_pair_with_the_models_reply_rejected(app, weather_reply):
    client, session_id, reply_id = weather_reply
    (model_call,) = [
        {"name": c["name"], "arguments": c["arguments"]} for c in message_row(app, reply_id).tool_calls
    ]
    fixed = FIXED_CALL if model_call != FIXED_CALL[0] else [{**model_call, "arguments": {"city": "Bergen"}}]

    unchanged = save(client, session_id, reply_id, kind="dpo", calls=json.dumps([model_call]))
    assert unchanged.status_code == 422 and "fix the answer first" in unchanged.get_data(as_text=True)
    saved = save(client, session_id, reply_id, kind="dpo", calls=json.dumps(fixed), new_name="Weather pairs")
    assert saved.status_code == 200, saved.get_data(as_text=True)
    (dataset,) = stored(app)
    assert (dataset.name, dataset.kind, dataset.sample_count) == ("Weather pairs", "dpo", 1)
    (row,) = file_rows(dataset)
    assert validate_dpo_row(row) == []
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["chosen"][0]["tool_calls"] == [{"type": "function", "function": fixed[0]}]
    assert row["rejected"][0]["tool_calls"] == [{"type": "function", "function": model_call}]
    assert row["meta"]["rejection"] == "chat"

    # The kind picked is remembered; a row of the other kind cannot go into this dataset.
    form = client.get(f"/chat/{session_id}/messages/{reply_id}/example").get_data(as_text=True)
    assert '<option value="dpo" selected>' in form and f'<option value="{dataset.id}" selected>' in form
    mixed = save(client, session_id, reply_id, kind="sft", dataset=str(dataset.id), calls=json.dumps(fixed))
    assert mixed.status_code == 422 and "holds preference pairs (DPO)" in mixed.get_data(as_text=True)

    # A reply to a tool result has no user message to end the prompt with: SFT only.
    result = htmx_post(
        client,
        f"/chat/{session_id}/messages/{reply_id}/tool-result",
        {"call_id": message_row(app, reply_id).tool_calls[0]["id"], "content": '{"temperature": 7}'},
    )
    follow_up = int(result.get_data(as_text=True).split('sse-connect="/chat/messages/')[1].split("/")[0])
    stream_events(client, follow_up)
    after_tool = save(client, session_id, follow_up, kind="dpo", content="It is 7 °C.")
    assert after_tool.status_code == 422 and "follows a tool result" in after_tool.get_data(as_text=True)
    assert [d.sample_count for d in stored(app)] == [1]


def test_a_rejected_answer_may_call_a_function_that_was_never_offered():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    invented = {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_forecast", "arguments": {}}}
    ]}  # fmt: skip
    good = {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {}}}
    ]}  # fmt: skip
    prompt = [{"role": "user", "content": "Weather?"}]
    row = {"prompt": prompt, "chosen": [good], "rejected": [invented], "tools": tools}
    assert validate_dpo_row(row) == []
    problems = validate_dpo_row({**row, "chosen": [invented], "rejected": [good]})
    assert problems == [
        "chosen[0].tool_calls[0]: calls 'get_forecast', which is not in tools (offered: get_weather)."
    ]
