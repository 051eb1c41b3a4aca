"""Per-user isolation: another user's rows are invisible (404), never 403 and never their data."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import BackgroundJob, JobStatus
from tests.conftest import post_form


def _job_for(app, owner_id: int, title: str) -> int:
    with app.app_context():
        job = BackgroundJob(
            owner_id=owner_id,
            kind="system_check",
            title=title,
            queue="default",
            func="jobs.system_check.run",
            status=JobStatus.SUCCEEDED,
            result={"secret": "A's data"},
        )
        db.session.add(job)
        db.session.commit()
        return job.id


def test_other_users_job_is_404(app, signed_in):
    alice, alice_user = signed_in("alice@example.com")  # first user: admin
    bob, bob_user = signed_in("bob@example.com")
    job_id = _job_for(app, alice_user.id, "Alice's private job")

    assert alice.get(f"/jobs/{job_id}").status_code == 200
    for response in (
        bob.get(f"/jobs/{job_id}"),
        bob.get(f"/jobs/{job_id}", headers={"HX-Request": "true"}),
        post_form(bob, f"/jobs/{job_id}/cancel"),
    ):
        assert response.status_code == 404
        assert "Alice's private job" not in response.get_data(as_text=True)
        assert "A&#39;s data" not in response.get_data(as_text=True)
    assert "Alice's private job" not in bob.get("/jobs/").get_data(as_text=True)


def test_admin_does_not_see_other_users_private_jobs(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    bob, bob_user = signed_in("bob@example.com")
    job_id = _job_for(app, bob_user.id, "Bob's private job")
    assert admin.get(f"/jobs/{job_id}").status_code == 404
    assert "Bob's private job" not in admin.get("/jobs/").get_data(as_text=True)


def test_ownership_helpers(app, make_user):
    from flask_login import login_user
    from werkzeug.exceptions import NotFound

    from app.models import User
    from app.ownership import get_manageable_or_404, get_owned_or_404, get_visible_or_404

    admin = make_user("admin@example.com")
    bob = make_user("bob@example.com")
    bob_job = _job_for(app, bob.id, "bob")
    global_job = _job_for(app, None, "global")
    with app.test_request_context():
        login_user(db.session.get(User, bob.id))
        assert get_owned_or_404(BackgroundJob, bob_job).title == "bob"
        assert get_visible_or_404(BackgroundJob, global_job).title == "global"
        for loader, object_id in ((get_owned_or_404, global_job), (get_manageable_or_404, global_job)):
            try:
                loader(BackgroundJob, object_id)
            except NotFound:
                pass
            else:
                raise AssertionError(f"{loader.__name__} let a non-admin reach a global row")
    with app.test_request_context():
        login_user(db.session.get(User, admin.id))
        assert get_manageable_or_404(BackgroundJob, global_job).title == "global"
        assert db.session.execute(sa.select(sa.func.count(BackgroundJob.id))).scalar_one() == 2
        try:
            get_manageable_or_404(BackgroundJob, bob_job)
        except NotFound:
            pass
        else:
            raise AssertionError("an admin could manage another user's private row")
