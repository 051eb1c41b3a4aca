"""Pushing a finished run to the Hub from its page, through a real `flask worker export --burst` and the
real huggingface_hub client against a fake Hub on loopback: again after a failed push, or for the first
time; refusals read as sentences; a cancelled or lost push leaves the run done."""

from __future__ import annotations

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import BackgroundJob, LLMModel, TrainingRun
from tests.conftest import csrf_token, start_worker

TOKEN = "hf_pushagaintoken0123456789abcdef"
pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("no_ambient_hub_settings")]


def finished_run(app, user, hub_push: dict | None = None) -> int:
    """A done run as the export leaves it: a registered GGUF and the merged model beside it."""
    from app.training.files import run_dir

    with app.app_context():
        run = TrainingRun(
            owner_id=user.id,
            name="weather",
            config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
            dataset_name="weather",
            stage="done",
            step=5,
            total_steps=5,
            hub_push=hub_push or {},
        )
        db.session.add(run)
        db.session.commit()
        export = run_dir(user.id, run.id) / "export"
        (export / "merged").mkdir(parents=True)
        (export / "merged" / "config.json").write_text('{"model_type": "llama"}')
        gguf = export / f"run{run.id}-Q4_K_M.gguf"
        gguf.write_bytes(b"GGUF" + bytes(range(32)))
        model = LLMModel(
            owner_id=user.id,
            name=f"run{run.id} Q4_K_M",
            provider="local_gguf",
            gguf_path=str(gguf),
            quantization="Q4_K_M",
            training_run_id=run.id,
        )
        db.session.add(model)
        db.session.commit()
        run.model_ids = [model.id]
        db.session.commit()
        return run.id


def the_run(app, run_id: int) -> TrainingRun:
    with app.app_context():
        row = db.session.get(TrainingRun, run_id)
        db.session.expunge(row)
        return row


def push(client, run_id: int, repo_id: str, private: bool = True, token: str | None = None):
    data = {"csrf_token": token or csrf_token(client, f"/runs/{run_id}"), "repo_id": repo_id}
    if private:
        data["private"] = "y"
    return client.post(f"/runs/{run_id}/push", data=data, follow_redirects=True)


def jobs(app) -> list[BackgroundJob]:
    with app.app_context():
        return list(db.session.execute(db.select(BackgroundJob)).scalars())


def test_a_failed_push_is_pushed_again_through_a_worker(app, signed_in, tmp_path, monkeypatch):
    from tests.hub_server import fake_hub

    client, user = signed_in()
    run_id = finished_run(app, user, {"repo": "alice/weather", "error": "The Hub is unreachable."})
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Push again" in page and 'value="alice/weather"' in page and "account settings" in page

    html = push(client, run_id, "alice/weather").get_data(as_text=True)
    assert "Save a Hugging Face token" in html and not jobs(app)  # no token: refused, nothing queued
    with app.app_context():
        db.session.get(type(user), user.id).set_hub_token(TOKEN)
        db.session.commit()

    assert push(client, run_id, "x", token="forged").status_code == 400  # CSRF first
    html = push(client, run_id, "not a repo").get_data(as_text=True)
    assert "owner/name" in html and not jobs(app) and the_run(app, run_id).stage == "done"

    html = push(client, run_id, "  alice/weather-v2 ").get_data(as_text=True)
    assert "Pushing to alice/weather-v2" in html and 'hx-trigger="every 2s"' in html
    assert the_run(app, run_id).stage == "pushing"
    assert "Only a finished run" in push(client, run_id, "alice/other").get_data(as_text=True)
    assert len(jobs(app)) == 1

    with fake_hub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        worker = start_worker(app, "export", "--burst", log_path=tmp_path / "worker.log")
        assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    run = the_run(app, run_id)
    assert run.stage == "done" and run.hub_push["repo"] == "alice/weather-v2" and run.hub_push["url"]
    pushed = hub.repos["alice/weather-v2"]
    assert pushed["private"]
    assert {"README.md", "config.json", f"run{run_id}-Q4_K_M.gguf"} <= set(pushed["files"])
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Pushed 3 files" in page and "every 2s" not in page and TOKEN not in page
    assert [(j.kind, j.queue, j.status) for j in jobs(app)] == [("hub_push", "export", "succeeded")]


def test_an_unreachable_hub_leaves_the_run_done_with_the_reason(app, signed_in, tmp_path, monkeypatch):
    from tests.training.test_pipeline import closed_port

    client, user = signed_in()
    with app.app_context():
        db.session.get(type(user), user.id).set_hub_token(TOKEN)
        db.session.commit()
    run_id = finished_run(app, user)
    assert "Push to the Hub" in client.get(f"/runs/{run_id}").get_data(as_text=True)
    push(client, run_id, "alice/weather", private=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    worker = start_worker(app, "export", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    run = the_run(app, run_id)
    assert run.stage == "done" and "unreachable" in run.hub_push["error"] and "url" not in run.hub_push
    assert "Not pushed to alice/weather" in client.get(f"/runs/{run_id}").get_data(as_text=True)


def test_a_queued_push_cancels_and_a_lost_one_leaves_the_run_done(app, signed_in):
    from app.models import JobStatus
    from app.training.services import reconcile_run

    client, user = signed_in()
    with app.app_context():
        db.session.get(type(user), user.id).set_hub_token(TOKEN)
        db.session.commit()
    run_id = finished_run(app, user)
    push(client, run_id, "alice/weather")
    token = csrf_token(client, f"/runs/{run_id}")
    client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token})
    run = the_run(app, run_id)
    assert run.stage == "done" and run.hub_push == {
        "repo": "alice/weather",
        "error": "Cancelled before it started.",
    }
    assert jobs(app)[0].status == JobStatus.CANCELLED

    push(client, run_id, "alice/weather")  # its worker dies mid-push: the run stays done
    with app.app_context():
        row = db.session.get(TrainingRun, run_id)
        job = db.session.get(BackgroundJob, row.job_id)
        job.status, job.error = JobStatus.FAILED, "The job's process ended unexpectedly."
        db.session.commit()
        reconcile_run(row)
    run = the_run(app, run_id)
    assert run.stage == "done" and run.model_ids and "ended unexpectedly" in run.hub_push["error"]


def test_another_users_run_cannot_be_pushed(app, signed_in):
    _, alice = signed_in("alice@example.com")
    run_id = finished_run(app, alice)
    bob, _ = signed_in("bob@example.com")
    assert push(bob, run_id, "bob/stolen").status_code == 404
    assert not jobs(app) and the_run(app, run_id).stage == "done"


def test_only_a_done_run_with_models_offers_the_push(app, signed_in):
    client, user = signed_in()
    run_id = finished_run(app, user)
    with app.app_context():
        db.session.get(TrainingRun, run_id).stage = "failed"
        db.session.commit()
    assert "Push to the Hub" not in client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Only a finished run" in push(client, run_id, "alice/weather").get_data(as_text=True)
    assert not jobs(app) and the_run(app, run_id).stage == "failed"


def test_of_two_pushes_at_once_only_one_queues(app, signed_in):
    from flask_login import login_user

    from app.models import User
    from app.training.services import RunRefused, push_run

    _, user = signed_in()
    run_id = finished_run(app, user)
    with app.test_request_context():
        login_user(db.session.get(User, user.id))
        db.session.get(User, user.id).set_hub_token(TOKEN)
        db.session.commit()
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == "done"  # read: the check in push_run will pass
        # Another tab's push claimed it a moment ago: this one still holds the run as it was read.
        db.session.execute(
            db.update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(stage="pushing")
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(RunRefused, match="already being pushed"):
            push_run(run, "alice/second", True)
    assert not jobs(app) and the_run(app, run_id).stage == "pushing"


def _signed_in_with_token(app, signed_in):
    from flask_login import login_user

    from app.models import User

    _, user = signed_in()
    run_id = finished_run(app, user, hub_push={"repo": "alice/old", "error": "Hub unreachable."})
    context = app.test_request_context()
    context.push()
    login_user(db.session.get(User, user.id))
    db.session.get(User, user.id).set_hub_token(TOKEN)
    db.session.commit()
    return context, run_id


def test_a_push_the_queue_refuses_leaves_the_run_as_it_was(app, signed_in):
    from app.queueing import EnqueueError
    from app.training.services import push_run

    context, run_id = _signed_in_with_token(app, signed_in)
    try:
        app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
        with pytest.raises(EnqueueError):
            push_run(db.session.get(TrainingRun, run_id), "alice/new", True)
    finally:
        context.pop()
    run = the_run(app, run_id)
    assert run.stage == "done" and run.hub_push == {"repo": "alice/old", "error": "Hub unreachable."}
    assert not jobs(app)


def test_a_claimed_push_survives_the_reconciler_and_a_fast_jobs_outcome_stands(app, signed_in, monkeypatch):
    from app.models import JobStatus
    from app.training import services

    context, run_id = _signed_in_with_token(app, signed_in)
    try:
        run = db.session.get(TrainingRun, run_id)
        earlier = BackgroundJob(
            owner_id=run.owner_id,
            kind="hub_push",
            title="t",
            func="f",
            queue="export",
            status=JobStatus.CANCELLED,
        )
        db.session.add(earlier)
        db.session.commit()
        run.job_id = earlier.id  # the last push was cancelled: its job is the run's until the next one
        db.session.commit()
        real_enqueue = services.enqueue_job

        def queued_then_failed_fast(**job):
            # Between the claim and the job's id: a page poll reconciles the run, and the job already ran.
            services.reconcile_run(db.session.get(TrainingRun, run_id))
            assert db.session.get(TrainingRun, run_id).stage == "pushing"
            queued = real_enqueue(**job)
            outcome = {"repo": "alice/new", "error": "The run's GGUF files are gone: nothing to push."}
            db.session.execute(
                db.update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(stage="done", hub_push=outcome, job_id=queued.id)
            )
            db.session.commit()
            return queued

        monkeypatch.setattr(services, "enqueue_job", queued_then_failed_fast)
        services.push_run(run, "alice/new", True)
    finally:
        context.pop()
    run = the_run(app, run_id)
    assert run.stage == "done" and "files are gone" in run.hub_push["error"]


def test_a_push_job_adopts_a_claim_its_request_never_recorded(app, signed_in):
    from jobs.export import _adopt_claim

    _, user = signed_in()
    run_id = finished_run(app, user)
    with app.app_context():
        jobs_ids = []
        for _ in range(2):
            job = BackgroundJob(owner_id=user.id, kind="hub_push", title="t", func="f", queue="export")
            db.session.add(job)
            db.session.commit()
            jobs_ids.append(job.id)
        db.session.execute(db.update(TrainingRun).where(TrainingRun.id == run_id).values(stage="pushing"))
        db.session.commit()
        _adopt_claim(run_id, jobs_ids[0])  # the web request died before recording its job
        _adopt_claim(run_id, jobs_ids[1])  # a stale job never takes a run that has one
    assert the_run(app, run_id).job_id == jobs_ids[0]
