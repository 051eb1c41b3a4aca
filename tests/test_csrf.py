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


def test_every_state_changing_route_refuses_a_post_without_the_token(app, signed_in):
    """Walks the URL map, so a new route cannot forget CSRF. Only the bearer-token API is exempt."""
    client, _ = signed_in("admin@example.com")
    checked = []
    for rule in app.url_map.iter_rules():
        if not rule.methods & {"POST", "PUT", "PATCH", "DELETE"} or rule.endpoint.startswith("api."):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        response = client.post(path, data={"x": "1"}, headers=HTMX_HEADERS)
        assert response.status_code == 400, (rule.endpoint, response.status_code)
        checked.append(rule.endpoint)
    assert len(checked) > 40 and "evaluations.new" in checked and "auth.create_api_token" in checked


def test_the_api_needs_no_csrf_token_because_it_ignores_the_session(client, signed_in):
    signed, _ = signed_in()
    response = signed.post("/v1/chat/completions", json={"model": "x", "messages": []})
    assert response.status_code == 401  # no bearer token: the cookie alone is not enough
