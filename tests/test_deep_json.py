"""JSON nested a few thousand levels deep (a few KB of `[[[[…`) makes `json.loads` raise RecursionError,
which `except ValueError` does not catch. Every place that parses JSON from outside answers it with a
clear refusal instead of a 500."""

from __future__ import annotations

import pytest

from app.datasets.services import store_rows
from app.json_input import loads
from app.serving.tool_calls import parse_tool_calls
from tests.api.test_openai_api import create_token
from tests.chat.conftest import htmx_post, new_session
from tests.conftest import csrf_token
from tests.datasets.test_pages import upload_dataset
from tests.specs.test_specs_and_nl_api import upload_spec

DEEP = "[" * 20_000 + "]" * 20_000


def test_loads_turns_deep_nesting_and_constants_into_value_errors():
    with pytest.raises(ValueError, match="nested too deeply"):
        loads(DEEP)
    with pytest.raises(ValueError, match="NaN is not a JSON value"):
        loads("[NaN]", allow_constants=False)
    assert loads("[NaN]")[0] != 0 and loads('{"a": [1]}') == {"a": [1]}
    assert parse_tool_calls(f"<tool_call>{DEEP}</tool_call>") == [] and parse_tool_calls(DEEP) == []


def test_deep_json_is_refused_everywhere_it_can_be_sent(app, signed_in, default_model_id, tmp_path):
    client, user = signed_in()
    token = create_token(client)
    api = client.post(
        "/v1/chat/completions",
        data=DEEP,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 400 and api.get_json()["error"]["type"] == "invalid_request_error"

    session_id = new_session(client, default_model_id)
    tools = htmx_post(client, f"/chat/{session_id}/tools", {"source": "json", "tools_json": DEEP})
    assert tools.status_code == 422 and "nested too deeply" in tools.get_data(as_text=True)

    deep_file = tmp_path / "deep.json"
    deep_file.write_text(DEEP)
    spec = upload_spec(client, deep_file)
    assert spec.status_code == 422 and "nested too deeply" in spec.get_data(as_text=True)

    upload = upload_dataset(client, DEEP.encode(), "d.jsonl")
    assert upload.status_code == 422 and "nested too deeply" in upload.get_data(as_text=True)

    row = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    with app.app_context():
        dataset_id = store_rows(user.id, "d", "sft", [row], source="upload", source_format="toolsmith").id
    from app.datasets.browse import row_digest

    edit = client.post(
        f"/datasets/{dataset_id}/rows/1/edit",
        data={"csrf_token": csrf_token(client, "/datasets/"), "digest": row_digest(row), "row_json": DEEP},
    )
    assert edit.status_code == 422 and "nested too deeply" in edit.get_data(as_text=True)


def test_nesting_depth_counts_without_recursing():
    from app.json_input import nesting_depth

    assert nesting_depth(3) == 0 and nesting_depth([]) == 1 and nesting_depth({"a": [1, {"b": []}]}) == 4
    value: list = []
    for _ in range(100_000):  # far past Python's recursion limit
        value = [value]
    assert nesting_depth(value) == 100_001


# Parsed fine at the top of the stack, yet deep enough to break the recursive code further down (the
# grammar builder, the schema checker, storage) at some depth between a few hundred and a thousand.
NESTED = "[" * 900 + "]" * 900
DEEP_TOOLS = (
    '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", '
    f'"properties": {{"a": {{"type": "array", "default": {NESTED}}}}}}}}}}}]'
)


def test_tools_and_schemas_nested_past_the_limit_are_refused_clearly(app, signed_in, default_model_id):
    from app.serving.tool_schema import MAX_SCHEMA_DEPTH
    from tests.api.test_openai_api import DEFAULT

    client, _ = signed_in()
    headers = {"Authorization": f"Bearer {create_token(client)}"}
    messages = [{"role": "user", "content": "hi"}]
    body = {"model": DEFAULT, "max_tokens": 2, "messages": messages, "tools": loads(DEEP_TOOLS)}
    api = client.post("/v1/chat/completions", json=body, headers=headers)
    assert api.status_code == 400 and f"the limit is {MAX_SCHEMA_DEPTH}" in api.get_json()["error"]["message"]

    schema = {"type": "object", "properties": {"a": {"default": loads(NESTED)}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = {"model": DEFAULT, "max_tokens": 2, "messages": messages, "response_format": response_format}
    api = client.post("/v1/chat/completions", json=body, headers=headers)
    assert api.status_code == 400 and "nested deeper than" in api.get_json()["error"]["message"]

    session_id = new_session(client, default_model_id)
    pasted = htmx_post(client, f"/chat/{session_id}/tools", {"source": "json", "tools_json": DEEP_TOOLS})
    assert pasted.status_code == 422 and "levels deep" in pasted.get_data(as_text=True)
