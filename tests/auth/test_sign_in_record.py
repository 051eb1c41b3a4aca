"""What a sign-in leaves behind: the time of a sign-in that happened, and nothing for a refused one."""

from __future__ import annotations

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import User
from tests.conftest import TEST_PASSWORD, login


def _stored(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_a_sign_in_records_its_time(app, client, make_user):
    user = make_user("alice@example.com")
    assert login(client, "alice@example.com").status_code == 302
    assert _stored(app, user.id).last_login_at is not None


def test_a_disabled_account_refused_at_sign_in_records_no_sign_in(app, client, make_user):
    with app.app_context():  # a hash weaker than today's settings would be upgraded by a real sign-in
        weak_hash = hash_password(TEST_PASSWORD)
    app.config.update(ARGON2_TIME_COST=app.config["ARGON2_TIME_COST"] + 1)
    user = make_user("bob@example.com", is_disabled=True, password_hash=weak_hash)
    response = login(client, "bob@example.com")
    assert response.status_code == 200
    assert "This account is disabled" in response.get_data(as_text=True)
    stored = _stored(app, user.id)
    assert stored.last_login_at is None  # the admin's Users page shows no sign-in that never happened
    assert stored.password_hash == weak_hash
