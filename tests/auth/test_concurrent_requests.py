"""Account requests that arrive at the same moment: the first-admin bootstrap and the API-token limit hold."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from app.extensions import db
from app.models import ApiToken, User
from tests.conftest import TEST_PASSWORD, csrf_token, login

SLOW_STEP_S = 0.3  # widens the real window between a request's check and its write


def _at_once(*requests):
    """Run the requests in threads that start together; their responses, in order."""
    responses = [None] * len(requests)

    def run(index: int) -> None:
        responses[index] = requests[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def _slow(monkeypatch, module, name: str) -> None:
    real = getattr(module, name)

    def slowed(*args, **kwargs):
        time.sleep(SLOW_STEP_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slowed)


def _register_at_once(app, monkeypatch, count: int = 2):
    import app.auth.services as services

    _slow(monkeypatch, services, "hash_password")  # Argon2 is slow for real: both requests pass the check
    clients = [app.test_client() for _ in range(count)]
    tokens = [csrf_token(client, "/auth/register") for client in clients]

    def registration(index: int):
        form = {"csrf_token": tokens[index], "email": f"u{index}@example.com"}
        form.update(password=TEST_PASSWORD, confirm=TEST_PASSWORD)
        return lambda: clients[index].post("/auth/register", data=form)

    return _at_once(*(registration(index) for index in range(count)))


def _users(app) -> list[User]:
    with app.app_context():
        users = db.session.execute(sa.select(User).order_by(User.id)).scalars().all()
        db.session.expunge_all()
        return users


def test_two_first_registrations_make_one_admin(app, monkeypatch):
    responses = _register_at_once(app, monkeypatch)
    assert [response.status_code for response in responses] == [302, 302]
    users = _users(app)
    assert len(users) == 2
    assert [user.is_admin for user in users].count(True) == 1, [(u.email, u.is_admin) for u in users]


def test_closed_registration_lets_only_the_first_of_two_at_once_in(app, monkeypatch):
    app.config["REGISTRATION_OPEN"] = False
    responses = _register_at_once(app, monkeypatch)
    users = _users(app)
    assert len(users) == 1 and users[0].is_admin
    assert sorted(response.status_code for response in responses) == [302, 403]
    refused = next(response for response in responses if response.status_code == 403)
    assert "Registration is closed" in refused.get_data(as_text=True)


def test_two_token_requests_at_once_stay_within_the_limit(app, signed_in, monkeypatch):
    import app.api.tokens as tokens

    client, user = signed_in()
    with app.app_context():
        for number in range(tokens.MAX_TOKENS_PER_USER - 1):
            tokens.issue_token(user.id, f"token {number}")
    _slow(monkeypatch, tokens, "issue_token")
    second = app.test_client()
    assert login(second, user.email).status_code == 302  # the same user signed in on another device
    forms = [
        {"csrf_token": csrf_token(each, "/auth/password"), "name": "laptop"} for each in (client, second)
    ]
    responses = _at_once(
        lambda: client.post("/auth/api-tokens", data=forms[0]),
        lambda: second.post("/auth/api-tokens", data=forms[1]),
    )
    assert sorted(response.status_code for response in responses) == [200, 422]
    refused = next(response for response in responses if response.status_code == 422)
    assert f"You have {tokens.MAX_TOKENS_PER_USER} tokens already" in refused.get_data(as_text=True)
    with app.app_context():
        count = db.session.execute(
            sa.select(sa.func.count(ApiToken.id)).where(ApiToken.owner_id == user.id)
        ).scalar_one()
    assert count == tokens.MAX_TOKENS_PER_USER
