"""Spec import pages, Petstore's operations as constrained tools, and NL → API mode end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.extensions import db
from app.models import ApiSpec, ChatMessage, ChatSession
from tests.chat.conftest import htmx_post, message_row, new_session, save_settings, send, stream_events
from tests.conftest import csrf_token

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "openapi"
PETSTORE = FIXTURES / "petstore-v2.swagger2.0.yaml"
CHECK_NAMES = [
    "operation_exists",
    "method_matches",
    "required_parameters",
    "parameter_values",
    "body_schema",
    "no_unknown_parameters",
]
PETSTORE_PROMPTS = [
    "Find pets by status available",
    "Get the pet with ID 42",
    "Delete the pet with ID 7",
    "Log in user alice with password secret",
    "Get the inventory of the store",
]

pytestmark = pytest.mark.skipif(not PETSTORE.is_file(), reason="../shared/fixtures is not beside the repo")


def upload_spec(client, path: Path, name: str | None = None):
    data = {
        "csrf_token": csrf_token(client, "/specs/"),
        "name": name or "",
        "file": (io.BytesIO(path.read_bytes()), path.name),
    }
    return client.post("/specs/", data=data, content_type="multipart/form-data")


def spec_id_of(app, name: str) -> int:
    with app.app_context():
        return (
            db.session.execute(db.select(ApiSpec.id).where(ApiSpec.name == name).order_by(ApiSpec.id.desc()))
            .scalars()
            .first()
        )


def test_petstore_imports_with_its_20_operations_and_versions(app, signed_in):
    client, _ = signed_in()
    response = upload_spec(client, PETSTORE, "petstore")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count("<tr><td><strong>") == 20 and "findPetsByStatus" in page
    assert upload_spec(client, PETSTORE, "petstore").status_code == 302
    with app.app_context():
        versions = db.session.execute(db.select(ApiSpec.version_number).where(ApiSpec.name == "petstore"))
        assert sorted(versions.scalars()) == [1, 2]


@pytest.mark.parametrize(
    ("filename", "operations"),
    [
        ("petstore-v2.swagger2.0.yaml", 20),
        ("petstore-v3.openapi3.0.yaml", 19),
        ("petstore-v31-codefirst.openapi3.1.json", 3),
        ("oai-example-uber.swagger2.0.json", 5),
        ("oai-example-uspto.openapi3.0.json", 3),
        ("oai-example-webhook.openapi3.1.yaml", 0),
    ],
)
def test_every_fixture_spec_imports_through_the_page(app, signed_in, filename, operations):
    client, _ = signed_in()
    response = upload_spec(client, FIXTURES / filename, "spec")
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{operations} operations" in page
    if operations == 0:  # a clear message instead of an empty table or a crash
        assert "no operations to turn into tools" in page


def test_an_operations_own_server_is_shown_beside_its_path(app, signed_in):
    client, _ = signed_in()
    ok = {"200": {"description": "ok"}}
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Files", "version": "1"},
        "servers": [{"url": "https://api.example/v1"}],
        "paths": {
            "/files": {"get": {"operationId": "listFiles", "responses": ok}},
            "/uploads": {"servers": [{"url": "https://upload.example/u"}],
                         "post": {"operationId": "upload", "responses": ok}},
        },
    }  # fmt: skip
    data = {"csrf_token": csrf_token(client, "/specs/"), "name": "files", "text": json.dumps(document)}
    response = client.post("/specs/", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count("on <code>https://upload.example/u</code>") == 1
    assert "<code>https://api.example/v1</code>" in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"openapi: 3.0.0\ninfo: [unclosed\n  title: x\n", "line"),
        (
            b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
            b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "alias",
        ),
    ],
)
def test_bad_yaml_is_refused_through_the_page(app, signed_in, tmp_path, content, message):
    client, _ = signed_in()
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    response = upload_spec(client, path)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).lower()
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ApiSpec.id))).scalar() == 0


def test_an_oversized_spec_is_refused_through_the_page(app, signed_in):
    app.config["MAX_SPEC_UPLOAD_BYTES"] = 4096
    client, _ = signed_in()
    response = upload_spec(client, PETSTORE)
    assert response.status_code == 422 and "limit" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ApiSpec.id))).scalar() == 0


def test_a_pasted_spec_up_to_the_limit_imports_like_an_uploaded_one(app, signed_in):
    """A paste is a form field: Flask's own cap on one field (500 kB) once refused it with a 413."""
    client, _ = signed_in()
    padding = "x" * 700_000  # a long description: 700 kB, under the 5 MiB limit
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Long", "version": "1", "description": padding},
        "paths": {"/a": {"get": {"operationId": "getA", "responses": {"200": {"description": "ok"}}}}},
    }
    data = {"csrf_token": csrf_token(client, "/specs/"), "name": "", "text": json.dumps(document)}
    response = client.post("/specs/", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    assert spec_id_of(app, "Long") is not None


def test_a_nul_in_a_specs_title_names_it_without_the_nul(app, signed_in):
    client, _ = signed_in()
    document = {
        "openapi": "3.0.0",
        "info": {"title": "a\u0000b", "version": "1"},
        "paths": {"/a": {"get": {"operationId": "getA", "responses": {"200": {"description": "ok"}}}}},
    }
    for _ in range(2):  # the second is version 2 of "ab", not a clash with the first (was a 500)
        data = {"csrf_token": csrf_token(client, "/specs/"), "name": "", "text": json.dumps(document)}
        response = client.post("/specs/", data=data, content_type="multipart/form-data")
        assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    with app.app_context():
        versions = db.session.execute(db.select(ApiSpec.name, ApiSpec.version_number)).all()
    assert sorted(versions) == [("ab", 1), ("ab", 2)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"openapi": "3.0.0", "info": {', "line"),
        (b"\x00\x01\x02\xff\xfe binary", ""),
        (
            b'{"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {"/a": {"get": {'
            b'"responses": {"200": {"description": "ok", "schema": {"$ref": "https://example.com/x.json#/P"}}}}}}}',
            "https://example.com/x.json",
        ),
        (  # half a UTF-16 pair: parses, but no UTF-8 text holds it (dataset generation was a 500)
            b'{"openapi": "3.0.0", "info": {"title": "x", "version": "1"}, "paths": {"/a": {"get": {'
            b'"summary": "Cut emoji \\ud83d", "responses": {"200": {"description": "ok"}}}}}}',
            "half a UTF-16 pair",
        ),
    ],
)
def test_bad_documents_are_refused_with_a_reason_and_nothing_stored(
    app, signed_in, tmp_path, content, message
):
    client, _ = signed_in()
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    response = upload_spec(client, path)
    assert response.status_code == 422
    assert "was not imported" in response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ApiSpec.id))).scalar() == 0


def test_another_users_spec_is_invisible(app, signed_in, default_model_id):
    alice, _ = signed_in("alice@example.com")
    upload_spec(alice, PETSTORE, "petstore")
    spec_id = spec_id_of(app, "petstore")
    bob, _ = signed_in("bob@example.com")
    assert bob.get(f"/specs/{spec_id}").status_code == 404
    assert htmx_post(bob, f"/specs/{spec_id}/delete").status_code == 404
    response = htmx_post(
        bob, f"/chat/{new_session(bob, default_model_id)}/tools", {"source": "spec", "spec": spec_id}
    )
    assert response.status_code == 422


@pytest.mark.slow
def test_constrained_petstore_calls_are_all_schema_valid(app, signed_in, default_model_id):
    """The untrained 135M model with Petstore's 20 tools: constrained, every call is valid by
    construction; unconstrained validity is recorded beside it (analytics shows both)."""
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    session_id = new_session(client, default_model_id)
    response = htmx_post(
        client, f"/chat/{session_id}/tools", {"source": "spec", "spec": spec_id_of(app, "petstore")}
    )
    assert response.status_code == 200
    rates = {}
    for constrained in (True, False):
        save_settings(
            client,
            session_id,
            default_model_id,
            tool_choice="required",
            max_tokens=96,
            constrained=constrained,
        )
        valid = calls = 0
        for prompt in PETSTORE_PROMPTS:
            reply_id = send(client, session_id, prompt)
            stream_events(client, reply_id)
            row = message_row(app, reply_id)
            assert row.status == "complete", row.error
            calls += len(row.tool_calls or [])
            valid += sum(not call["issues"] for call in row.tool_calls or [])
            if constrained:
                assert row.constrained is True and len(row.tool_calls) == 1
                assert row.tool_calls_valid is True, row.tool_calls
        rates[constrained] = (valid, calls)
    assert rates[True] == (len(PETSTORE_PROMPTS), len(PETSTORE_PROMPTS))
    print(f"Petstore tool calls valid: constrained {rates[True]}, unconstrained {rates[False]}")
    page = client.get("/analytics/").get_data(as_text=True)
    assert "Constrained validity" in page and "100.0%" in page


@pytest.mark.slow
def test_nl_to_api_mode_gives_a_checked_http_request(app, signed_in, default_model_id):
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    session_id = new_session(client, default_model_id, mode="api", spec_id=spec_id_of(app, "petstore"))
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert "Example requests" in page  # example-prompt buttons derived from the spec
    save_settings(client, session_id, default_model_id, max_tokens=96)
    reply_id = send(client, session_id, "Find pets by status sold")
    events = stream_events(client, reply_id)
    row = message_row(app, reply_id)
    request = row.api_request
    assert request["method"] in {"GET", "POST", "PUT", "DELETE"}
    assert request["url"].startswith("https://petstore.swagger.io/v2/")
    assert [check["name"] for check in request["checks"]] == CHECK_NAMES
    assert row.api_request_valid == all(check["ok"] for check in request["checks"])
    assert "API request" in events[-1][2] and "operation exists" in events[-1][2]
    # The card says which operation it calls, and that "valid" is about the spec, not the request's intent.
    assert f"calls <code>{request['operation_id']}</code>" in events[-1][2]
    assert "not against what you asked" in events[-1][2]
    history = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert "Query history (1)" in history and "Find pets by status sold" in history
    with app.app_context():
        assert db.session.get(ChatSession, session_id).mode == "api"
        assert db.session.execute(db.select(db.func.count(ChatMessage.id))).scalar() == 2
