"""User B can neither see, edit, test, try, download nor delete user A's private model; SSRF guard on save."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token, post_form
from tests.registry.conftest import add_model, model_rows


def test_other_users_private_model_is_invisible(app, signed_in):
    alice, _ = signed_in("alice@example.com")  # first account: admin, and still not allowed in
    bob, _ = signed_in("bob@example.com")
    add_model(
        bob,
        {
            "provider": "hf_inference",
            "name": "Bob's secret model",
            "model_id": "bob/private-model",
            "api_key": "hf_bobs_token_123456",
        },
    )
    (model,) = model_rows(app)
    token = csrf_token(alice, "/models/")
    htmx = {"HX-Request": "true"}
    responses = [
        alice.get(f"/models/{model.id}"),
        alice.get(f"/models/{model.id}/edit"),
        alice.post(
            f"/models/{model.id}/edit",
            data={"csrf_token": token, "name": "pwned", "model_id": "x/y", "max_tokens": "5"},
        ),
        alice.post(f"/models/{model.id}/test", data={"csrf_token": token}, headers=htmx),
        alice.post(f"/models/{model.id}/try", data={"csrf_token": token, "prompt": "hi"}, headers=htmx),
        alice.post(f"/models/{model.id}/toggle", data={"csrf_token": token}),
        alice.post(f"/models/{model.id}/delete", data={"csrf_token": token}),
        alice.get(f"/models/{model.id}/download"),
    ]
    for response in responses:
        assert response.status_code == 404
        assert "Bob&#39;s secret model" not in response.get_data(as_text=True)
    for query in ("", "?q=secret", "?owner=mine", "?provider=hf_inference"):
        assert "secret model" not in alice.get(f"/models/{query}").get_data(as_text=True)
    (after,) = model_rows(app)
    assert after.name == "Bob's secret model" and after.enabled and after.last_tested_at is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8000/v1", "only admins may use private endpoints"),
        ("http://localhost:11434/v1", "only admins may use private endpoints"),
        ("http://10.1.2.3/v1", "only admins may use private endpoints"),
        ("http://192.168.1.20:1234/v1", "only admins may use private endpoints"),
        ("http://169.254.169.254/latest/meta-data/", "never connects there"),
        ("http://[::ffff:169.254.169.254]/v1", "never connects there"),
    ],
)
def test_non_admin_private_and_metadata_endpoints_are_refused(app, make_user, signed_in, url, message):
    make_user("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    response = add_model(
        bob, {"provider": "openai_compatible", "name": "x", "base_url": url, "model_id": "m"}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert model_rows(app) == []


def test_admin_may_use_private_but_never_metadata_addresses(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    ok = add_model(
        admin,
        {
            "provider": "openai_compatible",
            "name": "vllm",
            "base_url": "http://10.0.0.5:8000/v1",
            "model_id": "m",
        },
    )
    assert ok.status_code == 302
    refused = add_model(
        admin,
        {
            "provider": "openai_compatible",
            "name": "meta",
            "base_url": "http://169.254.169.254/v1",
            "model_id": "m",
        },
    )
    assert refused.status_code == 422 and "never connects there" in refused.get_data(as_text=True)
    assert [m.name for m in model_rows(app)] == ["vllm"]


def test_allow_private_endpoints_setting_opens_private_ranges_to_users(app, make_user, signed_in):
    app.config["ALLOW_PRIVATE_ENDPOINTS"] = True
    make_user("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    ok = add_model(
        bob,
        {
            "provider": "openai_compatible",
            "name": "home",
            "base_url": "http://192.168.1.5/v1",
            "model_id": "m",
        },
    )
    assert ok.status_code == 302
    refused = add_model(
        bob,
        {
            "provider": "openai_compatible",
            "name": "meta",
            "base_url": "http://169.254.169.254/v1",
            "model_id": "m",
        },
    )
    assert refused.status_code == 422


def test_editing_to_a_private_address_is_refused_for_users(app, make_user, signed_in):
    make_user("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    add_model(
        bob,
        {
            "provider": "openai_compatible",
            "name": "x",
            "base_url": "https://api.example.com/v1",
            "model_id": "m",
        },
    )
    (model,) = model_rows(app)
    response = post_form(
        bob,
        f"/models/{model.id}/edit",
        {"name": "x", "base_url": "http://127.0.0.1:6379/", "model_id": "m", "max_tokens": "5"},
    )
    assert response.status_code == 422 and "only admins" in response.get_data(as_text=True)
    assert model_rows(app)[0].base_url == "https://api.example.com/v1"
