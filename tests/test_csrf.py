"""Every state-changing request needs the CSRF token, HTMX requests included."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token

HTMX_HEADERS = {"HX-Request": "true"}


@pytest.mark.parametrize("headers", [{}, HTMX_HEADERS], ids=["form", "htmx"])
def test_anonymous_posts_without_token_are_refused(client, make_user, headers):
    make_user("alice@example.com")
    response = client.post(
        "/auth/login", data={"email": "alice@example.com", "password": "x"}, headers=headers
    )
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = client.post(
        "/auth/register",
        data={"email": "b@example.com", "password": "longenough", "confirm": "longenough"},
        headers=headers,
    )
    assert response.status_code == 400


@pytest.mark.parametrize("headers", [{}, HTMX_HEADERS], ids=["form", "htmx"])
@pytest.mark.parametrize(
    "path", ["/auth/logout", "/jobs/system-check", "/auth/password", "/admin/users/1", "/jobs/1/cancel"]
)
def test_signed_in_posts_without_token_are_refused(signed_in, path, headers):
    client, _ = signed_in("admin@example.com")
    response = client.post(path, data={"action": "disable"}, headers=headers)
    assert response.status_code == 400
    assert client.get("/").status_code == 200  # still signed in: the logout did not happen


def test_wrong_token_is_refused(signed_in):
    client, _ = signed_in()
    response = client.post("/auth/logout", data={"csrf_token": "forged"}, headers=HTMX_HEADERS)
    assert response.status_code == 400


def test_htmx_sends_the_token_in_a_header(signed_in):
    client, _ = signed_in()
    page = client.get("/").get_data(as_text=True)
    token = csrf_token(client, "/")
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page
    response = client.post("/auth/logout", headers={**HTMX_HEADERS, "X-CSRFToken": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
