"""Accounts as a user meets them: register, sign in and out, change password, disabled accounts."""

from __future__ import annotations

import sqlalchemy as sa

from app.config import Config
from app.extensions import db
from app.models import User
from tests.conftest import TEST_PASSWORD, csrf_token, login, post_form, register


def _user(app, email: str) -> User:
    with app.app_context():
        return db.session.execute(sa.select(User).where(User.email == email)).scalar_one()


def test_register_signs_in_and_first_user_is_admin(app, client):
    response = register(client, "Founder@Example.com ")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "founder@example.com" in page  # normalised email shown in the header
    assert "Admin" in page
    assert _user(app, "founder@example.com").is_admin


def test_second_user_is_not_admin(app, client):
    register(client, "first@example.com")
    other = app.test_client()
    assert register(other, "second@example.com").status_code == 302
    assert not _user(app, "second@example.com").is_admin
    assert "/admin/users" not in other.get("/").get_data(as_text=True)
    assert other.get("/admin/users").status_code == 404


def test_duplicate_email_is_refused_case_insensitively(app, client, make_user):
    make_user("taken@example.com")
    response = register(client, "TAKEN@example.com")
    assert response.status_code == 200
    assert "already exists" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count(User.id))).scalar_one() == 1


def test_register_validation_errors_are_shown(client):
    response = post_form(
        client, "/auth/register", {"email": "not-an-email", "password": "short", "confirm": "x"}
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Invalid email address" in text
    assert "at least 8" in text.lower() or "between 8" in text.lower()
    assert "Passwords do not match" in text


def test_login_logout(client, make_user):
    make_user("alice@example.com")
    assert client.get("/").status_code == 302  # anonymous → sign-in page
    response = login(client, "alice@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert post_form(client, "/auth/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_message(client, make_user):
    make_user("alice@example.com")
    wrong = login(client, "alice@example.com", "not the password")
    unknown = login(client, "nobody@example.com", "whatever123")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_next_parameter_cannot_redirect_off_site(client, make_user):
    make_user("alice@example.com")
    token = csrf_token(client)
    data = {"email": "alice@example.com", "password": TEST_PASSWORD, "csrf_token": token}
    response = client.post("/auth/login?next=//evil.example/steal", data=data)
    assert response.headers["Location"] == "/"
    post_form(client, "/auth/logout")
    response = client.post("/auth/login?next=/jobs/", data={**data, "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/jobs/"


def test_change_password(app, signed_in):
    client, user = signed_in("alice@example.com")
    other_session = app.test_client()
    login(other_session, "alice@example.com")
    assert other_session.get("/").status_code == 200

    wrong = post_form(
        client,
        "/auth/password",
        {"current_password": "nope-nope", "new_password": "brand new secret", "confirm": "brand new secret"},
    )
    assert "not correct" in wrong.get_data(as_text=True)

    response = post_form(
        client,
        "/auth/password",
        {
            "current_password": TEST_PASSWORD,
            "new_password": "brand new secret",
            "confirm": "brand new secret",
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this session stays signed in
    assert other_session.get("/").status_code == 302  # every other session is signed out

    fresh = app.test_client()
    assert login(fresh, "alice@example.com", TEST_PASSWORD).status_code == 200  # old password refused
    assert login(fresh, "alice@example.com", "brand new secret").status_code == 302


def test_disabled_user_is_signed_out_and_cannot_sign_in(app, signed_in):
    client, user = signed_in("bob@example.com")
    assert client.get("/jobs/").status_code == 200
    with app.app_context():
        db.session.get(User, user.id).is_disabled = True
        db.session.commit()
    assert client.get("/jobs/").status_code == 302  # logged out on the next request
    response = login(app.test_client(), "bob@example.com")
    assert response.status_code == 200
    assert "disabled" in response.get_data(as_text=True)


def test_passwords_are_hashed_with_argon2id_at_owasp_strength(app, make_user):
    # OWASP: Argon2id, m >= 19 MiB, t >= 2, p >= 1 (the production defaults).
    assert Config.ARGON2_MEMORY_COST_KIB >= 19 * 1024 and Config.ARGON2_TIME_COST >= 2
    app.config.update(
        ARGON2_MEMORY_COST_KIB=Config.ARGON2_MEMORY_COST_KIB, ARGON2_TIME_COST=Config.ARGON2_TIME_COST
    )
    make_user("alice@example.com")
    stored = _user(app, "alice@example.com").password_hash
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert TEST_PASSWORD not in stored


def test_weaker_hash_is_upgraded_on_sign_in(app, client, make_user):
    make_user("alice@example.com")  # hashed with the light test parameters
    app.config.update(
        ARGON2_MEMORY_COST_KIB=Config.ARGON2_MEMORY_COST_KIB, ARGON2_TIME_COST=Config.ARGON2_TIME_COST
    )
    assert login(client, "alice@example.com").status_code == 302
    assert "m=19456,t=2,p=1" in _user(app, "alice@example.com").password_hash


def test_session_cookie_flags(app, make_user):
    make_user("alice@example.com")
    client = app.test_client()
    response = login(client, "alice@example.com")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    app.config["SESSION_COOKIE_SECURE"] = True
    secure_client = app.test_client()
    response = login(secure_client, "alice@example.com")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "Secure" in cookie


def test_closed_registration_still_allows_the_first_account(app, client):
    app.config["REGISTRATION_OPEN"] = False
    assert register(client, "founder@example.com").status_code == 302
    assert _user(app, "founder@example.com").is_admin
    other = app.test_client()
    response = register(other, "latecomer@example.com")
    assert response.status_code == 403
    assert "Registration is closed" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count(User.id))).scalar_one() == 1
