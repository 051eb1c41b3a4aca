"""Hostile input that used to give a 500 or slip through: ids too big for a database column, dates at
the end of the calendar, 300-digit config numbers, file names no file system holds, a malformed IPv6
URL, odd API shapes, NaN in saved rows, and an arena page naming the model before the vote."""

from __future__ import annotations

import json

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import TrainingConfig
from app.ownership import MAX_ROW_ID
from tests.conftest import csrf_token, post_form

HUGE = "9" * 20  # past 2**63: no database integer column holds it


@pytest.mark.parametrize(
    "path", ["/chat/", "/datasets/", "/models/", "/runs/", "/jobs/", "/specs/", "/configs/"]
)
def test_an_id_too_big_for_the_database_is_a_404(signed_in, path):
    client, _ = signed_in()
    assert client.get(f"{path}{HUGE}").status_code == 404
    assert client.get(f"{path}{MAX_ROW_ID}").status_code == 404  # the largest id: an ordinary miss
    assert client.get(f"{path}{MAX_ROW_ID + 1}").status_code == 404


def test_a_post_to_an_id_too_big_is_a_404_not_a_500(signed_in):
    client, _ = signed_in()
    token = csrf_token(client, "/runs/")
    assert client.post(f"/runs/{HUGE}/cancel", data={"csrf_token": token}).status_code == 404


def test_analytics_takes_model_ids_and_dates_at_the_edges_without_a_500(signed_in):
    client, _ = signed_in()
    assert client.get(f"/analytics/?models={HUGE}&models=-3&models=x").status_code == 200
    for path in ("/analytics/", "/analytics/export.csv"):
        response = client.get(f"{path}?start=9999-12-01&end=9999-12-31")
        assert response.status_code in (200, 422), path
    page = client.get("/analytics/?start=9999-12-01&end=9999-12-31").get_data(as_text=True)
    assert "before the year 9999" in page
    # One date only: the window's rules still hold (they once ran only when "To" was given).
    for query, message in [
        ("start=2999-01-01", "The end date is before the start date."),
        ("end=0001-01-05", "Pick an end date after January 0001."),
        ("start=0001-01-01", "Pick at most 366 days."),
    ]:
        for path in ("/analytics/", "/analytics/export.csv"):
            assert client.get(f"{path}?{query}").status_code in (200, 422), (path, query)
        assert message in client.get(f"/analytics/?{query}").get_data(as_text=True), query


def config_form(client, **fields) -> dict:
    from tests.configs.test_pages import form_data

    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "hostile", client)
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("training__batch_size", "9" * 310),
        ("tokenizer__max_length", "9" * 310),
        ("training__lora_r", "9" * 310),
        ("training__max_steps", "9" * 310),
        ("seed", "-1"),
        ("seed", str(2**64)),
        ("model__name", "x" * 300),
        ("model__name", "runs/1/../../../etc"),
    ],
)
def test_the_config_linter_and_save_take_absurd_values_without_a_500(app, signed_in, field, value):
    client, _ = signed_in()
    lint = client.post("/configs/lint", data=config_form(client, **{field: value}))
    assert lint.status_code == 200, lint.get_data(as_text=True)[-2000:]
    saved = client.post("/configs/new", data=config_form(client, **{field: value}))
    assert saved.status_code in (302, 422)
    if field in ("seed", "training__batch_size", "tokenizer__max_length"):  # out of range: refused
        assert saved.status_code == 422
        with app.app_context():
            assert db.session.query(TrainingConfig).count() == 0


def test_a_malformed_url_for_a_remote_model_is_a_form_error(signed_in):
    client, _ = signed_in()
    for url in ("http://[::1", "http://example.com:99999/v1"):
        data = {
            "provider": "openai_compatible",
            "name": "m",
            "model_id": "x",
            "max_tokens": "100",
            "base_url": url,
        }
        response = post_form(client, "/models/new", data)
        assert response.status_code == 422 and "valid http" in response.get_data(as_text=True), url


def api_token(client) -> str:
    from tests.api.test_openai_api import create_token

    return create_token(client)


def test_the_api_answers_odd_shapes_with_a_400_or_404_not_a_500(signed_in, default_model_id):
    client, _ = signed_in()
    headers = {"Authorization": f"Bearer {api_token(client)}"}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    for choice in ({"type": "function", "function": "f"}, {"type": "function", "function": ["f"]}):
        body = {
            "model": "SmolLM2-135M-Instruct",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": tools,
            "tool_choice": choice,
            "max_tokens": 4,
        }
        response = client.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 400 and "tool_choice" in response.get_data(as_text=True)
    nulls = {"temperature": None, "top_p": None, "stream": None, "max_tokens": 2}
    body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}], **nulls}
    assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200  # null: default
    body = {"model": "²", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 404
    assert client.get("/v1/models/%C2%B2", headers=headers).status_code == 404
    assert client.get("/v1/models/99999999999", headers=headers).status_code == 404  # past an INTEGER
    # Half a UTF-16 pair parses as JSON; in a schema it was a 500, in a message a 502 clients retried.
    # (json.dumps writes the lone surrogate as its \\ud800 escape, as a hostile client would send it.)
    schema = {"type": "json_schema", "json_schema": {"schema": {"type": "string", "enum": ["\ud800"]}}}
    ask = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}
    bodies = [{**ask, "response_format": schema}, {**ask, "stop": "\ud800"}]
    bodies.append({**ask, "messages": [{"role": "user", "content": "\ud800"}]})
    for body in bodies:
        raw = json.dumps(body)
        response = client.post(
            "/v1/chat/completions", data=raw, headers=headers, content_type="application/json"
        )
        assert response.status_code == 400 and "half a UTF-16 pair" in response.get_json()["error"]["message"]


def test_nan_in_a_saved_calls_box_is_refused():
    from app.chat.examples import parse_calls

    for text in ('{"name": "f", "arguments": {"a": NaN}}', '{"name": "f", "arguments": {"a": 1e999}}'):
        calls, problems = parse_calls(text)
        assert calls == [] and problems and "not valid JSON" in problems[0], text
    assert parse_calls('{"name": "f", "arguments": {"a": 1.5}}') == (
        [{"name": "f", "arguments": {"a": 1.5}}],
        [],
    )


def test_an_arena_side_names_no_model_before_the_vote_and_cannot_change_it(app, signed_in):
    from tests.chat.test_arena import battle_row, seed_battle, vote

    client, user = signed_in()
    group = seed_battle(app, user.id)
    fight = battle_row(app, group)
    composer = client.get(f"/chat/{fight.session_a_id}/composer").get_data(as_text=True)
    assert "alpha" not in composer and "Model A" in composer
    token = csrf_token(client, "/chat/")
    data = {"csrf_token": token, "model": str(fight.model_b_id), "temperature": "0", "top_p": "1"}
    data |= {"max_tokens": "64", "tool_choice": "auto", "system_prompt": ""}
    assert client.post(f"/chat/{fight.session_a_id}/settings", data=data).status_code == 404
    vote(client, group, "a")
    assert "alpha" in client.get(f"/chat/{fight.session_a_id}/composer").get_data(as_text=True)


def test_a_nul_character_anywhere_in_a_request_is_a_clear_400(app, client, signed_in):
    """PostgreSQL text cannot hold NUL: such a value in a lookup (sign-in, a filter, a name check) was a
    500 there. Refused in one place, on SQLite and PostgreSQL alike."""
    from tests.conftest import csrf_token

    token = csrf_token(client, "/auth/login")
    for data in ({"email": "admin@example.com\x00", "password": "x"}, {"email\x00": "a", "password": "x"}):
        response = client.post("/auth/login", data={"csrf_token": token, **data})
        assert response.status_code == 400, data
        assert "NUL character" in response.get_data(as_text=True)
    signed, _ = signed_in()
    for path in ("/analytics/?tag=a%00b", "/analytics/export.csv?tag=a%00b", "/chat/?q=%00", "/models/a%00b"):
        assert signed.get(path).status_code == 400, path
    assert signed.get("/analytics/?tag=ab").status_code == 200  # the same without it works
    lint = signed.post("/configs/lint", data=config_form(signed, model__name="a\x00b"))
    assert lint.status_code == 400 and "NUL character" in lint.get_data(as_text=True)


def test_a_nul_in_an_api_model_name_is_a_400_in_openais_shape(app, signed_in):
    from tests.api.test_openai_api import create_token

    client, _ = signed_in()
    headers = {"Authorization": f"Bearer {create_token(client)}"}
    body = {"model": "Smol\x00LM", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 400 and "model" in response.get_json()["error"]["message"]
    assert client.get("/v1/models/a%00b", headers=headers).status_code == 400


def test_a_nul_in_an_uploads_file_name_is_a_clear_400(app, signed_in):
    import io

    from app.models import Dataset

    client, _ = signed_in()
    row = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    data = {
        "csrf_token": csrf_token(client, "/datasets/"),
        "name": "",
        "file": (io.BytesIO(row), "a\x00b.jsonl"),
    }
    response = client.post("/datasets/upload", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Dataset.id))).scalar() == 0


def test_a_file_deleted_between_the_check_and_the_read_is_a_404(app, signed_in, monkeypatch):
    """Another tab deleting a dataset while its page reads the file: the page had checked the file was
    there a moment before (the check is made to pass here, as the race would)."""
    from pathlib import Path

    from app.datasets.services import store_rows

    client, user = signed_in()
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    with app.test_request_context():
        dataset = store_rows(user.id, "gone", "sft", [row], source="upload", source_format="toolsmith")
        dataset_id, path = dataset.id, Path(dataset.file_path)
    path.unlink()
    monkeypatch.setattr("app.datasets.routes._file_ready", lambda dataset: True)
    for page in (f"/datasets/{dataset_id}", f"/datasets/{dataset_id}/download?q=hi"):
        response = client.get(page)
        assert response.status_code == 404 and "deleted meanwhile" in response.get_data(as_text=True), page


@pytest.mark.parametrize(
    "body", [{"email": 5, "password": "x"}, [1], {"email": ["a@b.c"], "password": {"x": 1}}, None]
)
def test_a_json_body_on_a_form_route_is_no_form_at_all(app, client, body):
    """Flask-WTF read a JSON body as the form: numbers, lists and deep arrays reached text validators."""
    token = csrf_token(client)
    text = "[" * 20_000 + "]" * 20_000 if body is None else json.dumps(body)
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    response = client.post("/auth/login", data=text, headers=headers)
    assert response.status_code < 500
    assert "Sign out" not in client.get("/", follow_redirects=True).get_data(as_text=True)


def test_a_json_body_on_the_config_linter_is_no_form_either(signed_in):
    client, _ = signed_in()
    headers = {"X-CSRFToken": csrf_token(client), "HX-Request": "true"}
    assert client.post("/configs/lint", json={"seed": {"a": 1}}, headers=headers).status_code < 500


@pytest.mark.parametrize(
    ("path", "field"), [("/auth/login", "email"), ("/specs/", "text"), ("/configs/lint", "seed")]
)
def test_a_file_sent_as_a_text_field_is_ignored(signed_in, path, field):
    import io

    client, _ = signed_in()
    data = {"csrf_token": csrf_token(client), field: (io.BytesIO(b"x" * 10), "field.txt")}
    response = client.post(
        path, data=data, content_type="multipart/form-data", headers={"HX-Request": "true"}
    )
    assert response.status_code < 500


def test_every_form_reads_only_what_a_browser_sends():
    """Every form takes its data through `app.form_base.Form` (a form on FlaskForm alone would read
    JSON bodies and file parts into text fields again)."""
    import importlib
    import pkgutil

    from flask_wtf import FlaskForm

    import app as package
    from app.form_base import Form

    for module in pkgutil.walk_packages(package.__path__, "app."):
        importlib.import_module(module.name)
    pending, forms = list(FlaskForm.__subclasses__()), []
    while pending:
        form = pending.pop()
        forms.append(form)
        pending.extend(form.__subclasses__())
    outside = sorted(f"{form.__module__}.{form.__qualname__}" for form in forms if not issubclass(form, Form))
    assert len(forms) > 40 and outside == []
