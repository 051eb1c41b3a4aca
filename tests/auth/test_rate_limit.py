"""Failed sign-ins are rate-limited per account and per client address, in Redis."""

from __future__ import annotations

from tests.conftest import login


def _attempt(client, email: str, password: str = "wrong password", ip: str = "203.0.113.7"):
    return login(client, email, password, environ_base={"REMOTE_ADDR": ip})


def test_sixth_failed_attempt_on_one_account_gets_429(client, make_user):
    make_user("alice@example.com")
    for attempt in range(5):
        response = _attempt(client, "alice@example.com", ip=f"198.51.100.{attempt}")
        assert response.status_code == 200, attempt
    response = _attempt(client, "alice@example.com", ip="198.51.100.99")  # a new address does not help
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    # Even the right password is refused while the account is locked.
    assert (
        _attempt(client, "alice@example.com", "correct horse battery", ip="198.51.100.100").status_code == 429
    )


def test_sixth_failed_attempt_from_one_address_gets_429(client):
    for attempt in range(5):
        assert _attempt(client, f"user{attempt}@example.com").status_code == 200
    assert _attempt(client, "someone-else@example.com").status_code == 429
    assert _attempt(client, "someone-else@example.com", ip="192.0.2.1").status_code == 200


def test_successful_sign_ins_do_not_count(app, make_user):
    make_user("alice@example.com")
    for _ in range(7):
        client = app.test_client()
        assert _attempt(client, "alice@example.com", "correct horse battery").status_code == 302


def test_limit_counters_live_in_redis(app, client):
    import redis

    for _ in range(2):
        _attempt(client, "alice@example.com")
    keys = redis.Redis.from_url(app.config["REDIS_URL"]).keys("*login*")
    assert keys, "failed sign-ins should be counted in Redis"
