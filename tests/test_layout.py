"""The base layout: navigation, flash messages, htmx served locally (no CDN), error pages."""

from __future__ import annotations

import re

from app.config import PROJECT_ROOT


def test_navigation_for_users_and_admins(signed_in):
    admin, _ = signed_in("admin@example.com")
    user, _ = signed_in("user@example.com")
    for client, sees_admin in ((admin, True), (user, False)):
        page = client.get("/").get_data(as_text=True)
        nav = page.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
        labels = re.findall(r">([A-Z][a-z]+)</a>", nav)
        # In the order of the loop: a spec, its data, a config, a run, its model, then using it.
        loop = "Specs Datasets Configs Training Models Evaluations Chat Analytics Jobs".split()
        assert labels[: len(loop)] == loop, labels
        assert ('href="/admin/users"' in page) is sees_admin


def test_jobs_page_starts_empty(signed_in):
    client, _ = signed_in()
    page = client.get("/jobs/").get_data(as_text=True)
    assert "No background jobs yet." in page
    assert "Run system check" in page


def test_no_external_assets(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(not a.startswith(("http:", "https:", "//")) for a in assets), assets
    assert "/static/vendor/htmx.min.js" in page


def test_htmx_is_installed_and_served(client):
    assert (PROJECT_ROOT / "static" / "vendor" / "htmx.min.js").exists(), "run `make install` to fetch htmx"
    response = client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert b"htmx" in response.data[:2000]
    assert client.get("/static/css/app.css").status_code == 200


def test_flash_messages_and_friendly_404(signed_in):
    client, _ = signed_in()
    response = client.get("/does-not-exist")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
    assert client.get("/jobs/999999").status_code == 404


def test_json_clients_get_json_errors(client):
    response = client.get("/nope", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not found"


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_oversized_request_gets_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/auth/login", data={"email": "x" * 4096, "password": "y"})
    assert response.status_code == 413
    assert "larger than this server accepts" in response.get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.get_data(as_text=True)  # no inline scripts for the CSP to block


def test_every_template_title_is_plain_text():
    """A title block that swallowed markup once put the account page's API tokens (and a new token's
    secret) into the tab title and the browser history instead of the page."""
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "templates"
    for template in templates.rglob("*.html"):
        for title in re.findall(r"{% block title %}(.*?){% endblock %}", template.read_text(), re.S):
            assert "<" not in title and "\n" not in title, f"{template}: {title[:80]!r}"
