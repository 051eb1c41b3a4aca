"""The Hugging Face token in account settings: saved encrypted, never shown again, removable."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import User
from tests.conftest import csrf_token

pytestmark = pytest.mark.database
TOKEN = "hf_abcdefghijklmnopqrstuvwxyz0123456789"


def save(client, **data):
    data.setdefault("csrf_token", csrf_token(client, "/auth/password"))
    return client.post("/auth/hub-token", data=data)


def test_a_saved_token_is_encrypted_and_never_echoed(app, signed_in):
    client, user = signed_in()
    response = save(client, token=TOKEN)
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.has_hub_token and row.hub_token() == TOKEN
        assert TOKEN not in row.hub_token_encrypted
    page = client.get("/auth/password").get_data(as_text=True)
    assert "A token is saved" in page and TOKEN not in page and TOKEN[-8:] not in page


def test_remove_forgets_the_token(app, signed_in):
    client, user = signed_in()
    save(client, token=TOKEN)
    assert save(client, token="", remove="Remove the token").status_code == 302
    with app.app_context():
        assert not db.session.get(User, user.id).has_hub_token


@pytest.mark.parametrize(
    "bad", ["", "not-a-token", "hf_short", "hf_" + "x" * 300, "hf_abc def ghi jkl mno pqr"]
)
def test_malformed_tokens_are_refused_with_a_reason_and_nothing_is_saved(app, signed_in, bad):
    client, user = signed_in()
    response = save(client, token=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="error"' in html and (bad == "" or bad not in html)
    with app.app_context():
        assert not db.session.get(User, user.id).has_hub_token


def test_saving_needs_a_session_and_the_csrf_token(app, signed_in, client):
    anonymous = client.post("/auth/hub-token", data={"token": TOKEN, "csrf_token": csrf_token(client)})
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    signed, user = signed_in()
    assert signed.post("/auth/hub-token", data={"token": TOKEN}).status_code == 400
    with app.app_context():
        assert not db.session.get(User, user.id).has_hub_token
