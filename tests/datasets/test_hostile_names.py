"""Names a problem message quotes (tools, calls) and formats a file mixes: a lone surrogate escape or
many formats gets a clear answer, never a page that cannot be encoded or a column that overflows."""

from __future__ import annotations

import json

import pytest

from app.datasets.browse import row_digest
from app.datasets.services import store_rows
from app.extensions import db
from app.models import Dataset
from tests.conftest import csrf_token
from tests.datasets.test_pages import upload_dataset

# JSON text kept ASCII: the lone surrogate travels as the escape \ud800, as a hostile file would send it.
XLAM_ROW = json.dumps(
    {"query": "q", "answers": "[]", "tools": [{"name": "\ud800bad", "parameters": {"a": "str"}}]}
)
CALLS_A_SURROGATE = (
    '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"",'
    '"tool_calls":[{"type":"function","function":{"name":"\\ud800","arguments":{}}}]},'
    '{"role":"tool","name":"y","content":"r"},{"role":"assistant","content":"ok"}]}'
)
OFFERS_A_SURROGATE = (
    '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"",'
    '"tool_calls":[{"type":"function","function":{"name":"x","arguments":{}}}]}],'
    '"tools":[{"type":"function","function":{"name":"\\ud800","parameters":{"type":"object"}}}]}'
)


@pytest.mark.parametrize(
    "body", [XLAM_ROW, CALLS_A_SURROGATE, OFFERS_A_SURROGATE], ids=["xlam", "call", "tools"]
)
def test_an_upload_quoting_a_lone_surrogate_name_gets_its_problems(app, signed_in, body):
    client, _ = signed_in()
    response = upload_dataset(client, body.encode(), "x.jsonl")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "None of the 1 rows can be imported" in page
    assert body is OFFERS_A_SURROGATE or "\\ud800" in page  # a quoted name spelled as its escape
    with app.app_context():
        assert db.session.query(Dataset).count() == 0


def test_the_row_editor_quotes_a_lone_surrogate_name_as_its_escape(app, signed_in):
    client, user = signed_in()
    row = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    with app.app_context():
        dataset_id = store_rows(user.id, "d", "sft", [row], source="upload", source_format="toolsmith").id
    data = {
        "csrf_token": csrf_token(client, "/datasets/"),
        "digest": row_digest(row),
        "row_json": OFFERS_A_SURROGATE,
    }
    response = client.post(f"/datasets/{dataset_id}/rows/1/edit", data=data)
    assert response.status_code == 422 and "\\ud800" in response.get_data(as_text=True)
    assert client.get(f"/datasets/{dataset_id}").status_code == 200


def test_a_file_mixing_many_formats_is_imported_as_mixed(app, signed_in):
    toolsmith = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"c": "Oslo"}'}}
    openai = {
        "messages": [
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    body = "\n".join(json.dumps(r) for r in (toolsmith, openai, {"prompt": "2+2?", "completion": "4"}))
    client, _ = signed_in()
    response = upload_dataset(client, body.encode(), "m.jsonl")
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        (dataset,) = db.session.query(Dataset).all()
        assert dataset.source_format == "mixed" and dataset.sample_count == 3


def test_a_name_taken_between_the_check_and_the_save_is_a_clear_error_and_no_file(app, signed_in):
    """Two tabs saving the same name at once: both found it free; the second gets a sentence, not a 500."""
    from pathlib import Path

    from app.datasets.services import DatasetError

    client, user = signed_in()
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    with app.test_request_context():
        first = store_rows(user.id, "twice", "sft", [row], source="upload", source_format="toolsmith")
        with pytest.raises(DatasetError, match="saved a moment ago"):
            store_rows(user.id, "twice", "sft", [row], source="upload", source_format="toolsmith")
        files = sorted(p.name for p in Path(first.file_path).parent.iterdir())
        assert db.session.execute(db.select(db.func.count(Dataset.id))).scalar() == 1
    assert files == [Path(first.file_path).name]
