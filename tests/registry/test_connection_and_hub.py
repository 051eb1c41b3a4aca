"""Test connection, "Try it" and "Fetch model info" through the pages, against real servers on loopback."""

from __future__ import annotations

import json

from tests.conftest import LLAMA_SERVER_ALIAS, post_form
from tests.llama_server import HTTPAnswer, serve_http
from tests.registry.conftest import add_model, model_rows

HTMX = {"HX-Request": "true"}
PARIS_PROMPT = "What is the capital of France? Answer in one sentence."


def _add_endpoint(client, base_url: str, model_id: str = LLAMA_SERVER_ALIAS) -> int:
    response = add_model(
        client,
        {"provider": "openai_compatible", "name": "local server", "base_url": base_url, "model_id": model_id},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return model_rows(client.application)[-1].id


def test_admin_adds_an_openai_compatible_endpoint_and_tests_it(app, signed_in, llama_server_url):
    admin, _ = signed_in("admin@example.com")  # loopback endpoints are for admins
    model_id = _add_endpoint(admin, llama_server_url)
    fragment = post_form(admin, f"/models/{model_id}/test", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith(f'<div id="model-status-{model_id}"')
    assert "test passed" in fragment
    (row,) = model_rows(app)
    assert row.last_test_ok is True and row.last_tested_at is not None

    reply = post_form(
        admin, f"/models/{model_id}/try", {"prompt": PARIS_PROMPT, "temperature": "0"}, headers=HTMX
    )
    assert reply.status_code == 200 and "Paris" in reply.get_data(as_text=True)


def test_connection_test_failures_say_what_went_wrong(app, signed_in, llama_server_url, dead_port):
    admin, _ = signed_in("admin@example.com")
    wrong_model = _add_endpoint(admin, llama_server_url, model_id="no-such-model")
    wrong_port = _add_endpoint(admin, f"http://127.0.0.1:{dead_port}/v1")
    page = post_form(admin, f"/models/{wrong_model}/test", headers=HTMX).get_data(as_text=True)
    assert "test failed" in page and "does not offer model" in page and LLAMA_SERVER_ALIAS in page
    page = post_form(admin, f"/models/{wrong_port}/test", headers=HTMX).get_data(as_text=True)
    assert "test failed" in page and "Connection refused" in page
    assert [row.last_test_ok for row in model_rows(app)] == [False, False]
    failed_try = post_form(admin, f"/models/{wrong_port}/try", {"prompt": "hi"}, headers=HTMX)
    assert failed_try.status_code == 502 and "Connection refused" in failed_try.get_data(as_text=True)


def test_global_model_set_up_by_an_admin_on_loopback_works_for_users(app, signed_in, llama_server_url):
    admin, _ = signed_in("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    add_model(
        admin,
        {"provider": "openai_compatible", "name": "team server", "base_url": llama_server_url,
         "model_id": LLAMA_SERVER_ALIAS, "shared": "y"},
    )  # fmt: skip
    (model,) = model_rows(app)
    assert "test passed" in post_form(bob, f"/models/{model.id}/test", headers=HTMX).get_data(as_text=True)


def test_default_local_model_tests_and_answers(app, signed_in, default_model_id):
    client, _ = signed_in("alice@example.com")
    fragment = post_form(client, f"/models/{default_model_id}/test", headers=HTMX).get_data(as_text=True)
    assert "test passed" in fragment and "Loaded in llama.cpp" in fragment
    assert "loaded in memory" in fragment
    reply = post_form(client, f"/models/{default_model_id}/try", {"prompt": PARIS_PROMPT, "temperature": "0"})
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Paris" in page and "completion tokens" in page


def test_disabled_model_does_not_answer(app, signed_in, default_model_id):
    client, _ = signed_in("alice@example.com")
    post_form(client, f"/models/{default_model_id}/toggle")
    reply = post_form(client, f"/models/{default_model_id}/try", {"prompt": "hi"}, headers=HTMX)
    assert reply.status_code == 409 and "disabled" in reply.get_data(as_text=True)


HUB_ANSWER = {
    "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "author": "HuggingFaceTB",
    "pipeline_tag": "text-generation",
    "library_name": "transformers",
    "tags": ["transformers", "safetensors", "llama", "text-generation", "conversational"],
    "cardData": {"license": "apache-2.0", "base_model": ["HuggingFaceTB/SmolLM2-135M"]},
    "safetensors": {"parameters": {"BF16": 134515008}, "total": 134515008},
    "config": {"tokenizer_config": {"chat_template": "{% for message in messages %}{% endfor %}"}},
    "gguf": {"context_length": 8192},
}


def _fetch(client, model_id: str, **extra):
    data = {"provider": "hf_inference", "model_id": model_id, "name": "", "api_key": "", **extra}
    return post_form(client, "/models/hub-info", data, headers=HTMX)


def test_fetch_model_info_fills_the_form_from_the_hub(app, signed_in):
    seen = []

    def hub(request):
        if request.path.startswith("/api/models/HuggingFaceTB/SmolLM2-135M-Instruct"):
            return HTTPAnswer(200, json.dumps(HUB_ANSWER), {"Content-Type": "application/json"})
        return HTTPAnswer(
            404,
            json.dumps({"error": "Repository not found"}),
            {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"},
        )

    client, _ = signed_in("alice@example.com")
    with serve_http(hub, seen) as hub_url:
        app.config["HF_ENDPOINT"] = hub_url
        filled = _fetch(client, "HuggingFaceTB/SmolLM2-135M-Instruct", api_key="hf_secret_token_abc")
        missing = _fetch(client, "nobody/nothing")
    page = filled.get_data(as_text=True)
    assert page.lstrip().startswith('<div id="model-facts">')
    assert 'value="SmolLM2-135M-Instruct"' in page and "apache-2.0" in page and "134.5M parameters" in page
    assert 'value="8192"' in page and 'value="HuggingFaceTB/SmolLM2-135M"' in page
    assert "hf_secret_token_abc" not in page
    assert seen[0].headers.get("authorization") == "Bearer hf_secret_token_abc"
    assert "The Hub has no model nobody/nothing" in missing.get_data(as_text=True)
    assert model_rows(app) == []  # fetching fills the form; it saves nothing


def test_fetch_model_info_says_plainly_when_the_hub_is_unreachable(app, signed_in, dead_port):
    client, _ = signed_in("alice@example.com")
    app.config.update(HF_ENDPOINT=f"http://127.0.0.1:{dead_port}", HF_HUB_TIMEOUT_SECONDS=2)
    page = _fetch(client, "HuggingFaceTB/SmolLM2-135M-Instruct").get_data(as_text=True)
    assert "is not reachable from this server" in page and "Fill in the fields by hand" in page
    assert "like username/model-name" in _fetch(client, "bad id with spaces").get_data(as_text=True)
