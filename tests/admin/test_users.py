"""The admin user list: disable, enable, promote and demote accounts."""

from __future__ import annotations

from app.extensions import db
from app.models import User
from tests.conftest import login, post_form


def _user(app, user_id: int) -> User:
    with app.app_context():
        return db.session.get(User, user_id)


def test_admin_lists_users_and_disables_one(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    bob, bob_user = signed_in("bob@example.com")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "admin@example.com" in page and "bob@example.com" in page

    response = post_form(
        admin, f"/admin/users/{bob_user.id}", {"action": "disable"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert f'id="user-{bob_user.id}"' in response.get_data(as_text=True)  # the row swaps itself
    assert _user(app, bob_user.id).is_disabled
    assert bob.get("/").status_code == 302  # bob is signed out on his next request

    post_form(admin, f"/admin/users/{bob_user.id}", {"action": "enable"})
    assert not _user(app, bob_user.id).is_disabled
    assert bob.get("/").status_code == 302  # his old session stays ended: a stolen cookie too
    assert login(app.test_client(), "bob@example.com").status_code == 302


def test_admin_promotes_and_demotes(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    bob, bob_user = signed_in("bob@example.com")
    post_form(admin, f"/admin/users/{bob_user.id}", {"action": "make_admin"})
    assert _user(app, bob_user.id).is_admin
    assert bob.get("/admin/users").status_code == 200
    post_form(admin, f"/admin/users/{bob_user.id}", {"action": "revoke_admin"})
    assert not _user(app, bob_user.id).is_admin
    assert bob.get("/admin/users").status_code == 404


def test_two_admins_demoting_each_other_at_once_leave_one(app, signed_in):
    """Bob's demotion of the admin is mid-write (its transaction open) when the admin's demotion of Bob
    arrives: the second must wait, count again, and be refused, on SQLite and on PostgreSQL."""
    import threading
    import time

    import sqlalchemy as sa

    admin, admin_user = signed_in("admin@example.com")
    _, bob_user = signed_in("bob@example.com")
    post_form(admin, f"/admin/users/{bob_user.id}", {"action": "make_admin"})
    outcome = {}

    def admin_demotes_bob() -> None:
        response = post_form(admin, f"/admin/users/{bob_user.id}", {"action": "revoke_admin"},
                             follow_redirects=True)  # fmt: skip
        outcome["page"] = response.get_data(as_text=True)

    with app.app_context():
        with db.engine.connect() as bobs_request:
            bobs_request.execute(sa.update(User).where(User.id == admin_user.id).values(is_admin=False))
            racing = threading.Thread(target=admin_demotes_bob)
            racing.start()
            time.sleep(1.0)  # the admin's request is now waiting on Bob's open write
            bobs_request.commit()
        racing.join(timeout=30)
    assert "at least one active admin" in outcome["page"]
    assert _user(app, bob_user.id).is_admin and not _user(app, admin_user.id).is_admin


def test_admin_cannot_lock_themselves_out(app, signed_in):
    admin, admin_user = signed_in("admin@example.com")
    for action in ("disable", "revoke_admin"):
        response = post_form(
            admin, f"/admin/users/{admin_user.id}", {"action": action}, follow_redirects=True
        )
        assert "cannot" in response.get_data(as_text=True)
    enable = post_form(admin, f"/admin/users/{admin_user.id}", {"action": "enable"}, follow_redirects=True)
    assert "Your own account is enabled already." in enable.get_data(as_text=True)
    user = _user(app, admin_user.id)
    assert user.is_admin and not user.is_disabled


def test_unknown_action_and_unknown_user(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    _, bob_user = signed_in("bob@example.com")
    response = post_form(
        admin, f"/admin/users/{bob_user.id}", {"action": "delete_everything"}, follow_redirects=True
    )
    assert response.status_code == 200 and "Unknown action." in response.get_data(as_text=True)
    assert post_form(admin, "/admin/users/999999", {"action": "disable"}).status_code == 404


def test_non_admin_cannot_use_admin_actions(app, signed_in):
    signed_in("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    _, carol = signed_in("carol@example.com")
    assert post_form(bob, f"/admin/users/{carol.id}", {"action": "make_admin"}).status_code == 404
    assert not _user(app, carol.id).is_admin
