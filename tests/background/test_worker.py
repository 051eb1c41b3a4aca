"""Jobs run in real `flask worker` processes against the real Redis and database.

Covers: a view-enqueued job succeeding, a failing job, a killed work horse, a killed whole worker,
cancellation, and Redis being unavailable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from app.config import PROJECT_ROOT
from app.extensions import db
from app.models import BackgroundJob, JobStatus
from app.queueing import enqueue_job
from tests.conftest import flask_command, post_form, start_worker, worker_environment

pytestmark = pytest.mark.worker


def _job(app, job_id: int) -> BackgroundJob:
    with app.app_context():
        job = db.session.get(BackgroundJob, job_id)
        db.session.expunge(job)
        return job


def _wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def _wait_until_running(app, job_id: int) -> BackgroundJob:
    return _wait_for(lambda: (j := _job(app, job_id)).status == JobStatus.RUNNING and j, timeout=60)


def _kill_worker_and_horse(worker: subprocess.Popen, horse_pid: int) -> None:
    """SIGKILL the work horse and the worker parent: nothing is left to report the job's end."""
    os.kill(horse_pid, signal.SIGKILL)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def _enqueue(app, owner_id: int, func: str, *args) -> int:
    with app.app_context():
        return enqueue_job(
            owner_id=owner_id, kind="test", title=func.rsplit(".", 1)[-1], func=func, args=args
        ).id


def _run_burst_worker(app, tmp_path, timeout: float = 120) -> str:
    result = subprocess.run(
        flask_command("worker", "--burst"),
        cwd=PROJECT_ROOT,
        env=worker_environment(app),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_system_check_from_the_jobs_page_succeeds_in_a_burst_worker(app, signed_in, tmp_path):
    client, user = signed_in()
    response = post_form(client, "/jobs/system-check")
    assert response.status_code == 302
    page = client.get("/jobs/").get_data(as_text=True)
    assert "System check" in page and "queued" in page

    _run_burst_worker(app, tmp_path)

    with app.app_context():
        job = db.session.execute(sa.select(BackgroundJob)).scalar_one()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 1.0 and job.finished_at and job.started_at
    assert job.result["packages"]["torch"].startswith("2.13.0")
    assert job.result["accelerator"]["cuda"] in (True, False)
    from jobs.training.hardware import cpu_has_native_bf16

    assert job.result["accelerator"]["cpu_bf16"] == cpu_has_native_bf16()
    assert job.result["accelerator"]["cpu_instructions"] in ("DEFAULT", "AVX2", "AVX512", "NEON", "SVE256")
    assert job.result["services"]["database"] in ("sqlite", "postgresql")
    llama = job.result["llama_cpp"]
    assert "CPU :" in llama["features"] and llama["amx_kept_off"] == ("AMX_INT8 = 1" in llama["features"])
    assert job.result["services"]["redis_version"]
    # The finished card tells htmx to stop polling.
    card = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"})
    assert card.status_code == 286
    assert "succeeded" in card.get_data(as_text=True)


def test_running_job_card_keeps_polling(app, signed_in):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 1.0)
    card = client.get(f"/jobs/{job_id}", headers={"HX-Request": "true"})
    assert card.status_code == 200
    assert 'hx-trigger="every 2s"' in card.get_data(as_text=True)


def test_failing_job_records_the_error(app, signed_in, tmp_path):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.explode")
    _run_burst_worker(app, tmp_path)
    job = _job(app, job_id)
    assert job.status == JobStatus.FAILED
    assert "the tokenizer has no chat template" in job.error
    assert "the tokenizer has no chat template" in client.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_killed_work_horse_marks_the_job_failed(app, signed_in, tmp_path):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    worker = start_worker(app, log_path=tmp_path / "worker.log")
    try:
        running = _wait_until_running(app, job_id)
        assert running.worker_pid and running.worker_pid != worker.pid
        os.kill(running.worker_pid, signal.SIGKILL)  # the work horse only; the worker parent survives
        failed = _wait_for(lambda: (j := _job(app, job_id)).status == JobStatus.FAILED and j, timeout=30)
        assert "killed" in failed.error and "signal 9" in failed.error and "Out of memory" in failed.error
        assert worker.poll() is None, "the worker itself should keep running"
    finally:
        _stop(worker)


def test_killed_worker_and_horse_mark_the_job_failed_within_a_minute(app, signed_in, tmp_path):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.sleep_silently", 300)
    worker = start_worker(app, log_path=tmp_path / "worker.log")
    try:
        running = _wait_until_running(app, job_id)
        time.sleep(2 * app.config["JOB_HEARTBEAT_SECONDS"])
        assert _job(app, job_id).heartbeat_at > running.started_at, "the heartbeat thread should tick"
        killed_at = time.monotonic()
        _kill_worker_and_horse(worker, running.worker_pid)

        def failed_on_page():
            card = client.get(f"/jobs/{job_id}", headers={"HX-Request": "true"})
            return card.status_code == 286 and "failed" in card.get_data(as_text=True)

        _wait_for(failed_on_page, timeout=60, interval=1)
        assert time.monotonic() - killed_at < 60
        job = _job(app, job_id)
        assert job.status == JobStatus.FAILED and "stopped responding" in job.error
    finally:
        _stop(worker)


def test_a_surviving_worker_reports_jobs_of_a_dead_one(app, signed_in, tmp_path):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.sleep_silently", 300)
    doomed = start_worker(app, "default", log_path=tmp_path / "doomed.log")
    survivor = None
    try:
        running = _wait_until_running(app, job_id)
        _kill_worker_and_horse(doomed, running.worker_pid)
        survivor = start_worker(app, "train", log_path=tmp_path / "survivor.log")
        failed = _wait_for(lambda: (j := _job(app, job_id)).status == JobStatus.FAILED and j, timeout=60)
        assert "stopped responding" in failed.error
    finally:
        _stop(doomed)
        if survivor:
            _stop(survivor)


def test_cancel_a_running_job(app, signed_in, tmp_path):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    worker = start_worker(app, log_path=tmp_path / "worker.log")
    try:
        _wait_until_running(app, job_id)
        asked_at = time.monotonic()
        response = post_form(client, f"/jobs/{job_id}/cancel", headers={"HX-Request": "true"})
        assert response.status_code == 200
        _wait_for(lambda: _job(app, job_id).status == JobStatus.CANCELLED, timeout=15)
        assert time.monotonic() - asked_at < 15
    finally:
        _stop(worker)


def test_cancel_a_queued_job(app, signed_in):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    response = post_form(client, f"/jobs/{job_id}/cancel")
    assert response.status_code == 302
    assert _job(app, job_id).status == JobStatus.CANCELLED


def test_redis_down_gives_a_clear_message_and_no_row(app, signed_in):
    client, user = signed_in()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.extensions.pop("toolsmith_redis", None)
    response = post_form(client, "/jobs/system-check", follow_redirects=True)
    assert response.status_code == 200
    assert "job queue is unavailable" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count(BackgroundJob.id))).scalar_one() == 0


def test_one_system_check_at_a_time_per_user(app, signed_in):
    client, user = signed_in()
    bob, bob_user = signed_in("bob@example.com")
    assert post_form(client, "/jobs/system-check").status_code == 302  # queued; no worker takes it here
    again = post_form(client, "/jobs/system-check", follow_redirects=True).get_data(as_text=True)
    assert "has not finished yet" in again
    assert post_form(bob, "/jobs/system-check").status_code == 302  # another user's own check
    with app.app_context():
        checks = db.session.execute(
            sa.select(BackgroundJob.owner_id).where(BackgroundJob.kind == "system_check")
        )
        assert sorted(checks.scalars()) == sorted([user.id, bob_user.id])


def test_reconcile_command(app, runner, make_user):
    from datetime import timedelta

    from app.models import utcnow

    user = make_user("alice@example.com")
    with app.app_context():
        long_ago = utcnow() - timedelta(minutes=10)
        job = BackgroundJob(
            owner_id=user.id,
            kind="t",
            title="orphan",
            queue="default",
            func="x.y",
            status=JobStatus.RUNNING,
            started_at=long_ago,
            heartbeat_at=long_ago,
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    result = runner.invoke(args=["reconcile"])
    assert f"Marked 1 job(s) failed: {job_id}" in result.output
    assert _job(app, job_id).status == JobStatus.FAILED


def test_queued_job_lost_from_redis_is_failed_by_reconcile(app, runner, make_user):
    from datetime import timedelta

    import redis

    from app.models import utcnow

    user = make_user("alice@example.com")
    kept_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 1)
    lost_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 1)
    with app.app_context():
        for job in db.session.execute(sa.select(BackgroundJob)).scalars():
            job.created_at = utcnow() - timedelta(minutes=5)
        lost_rq_id = db.session.get(BackgroundJob, lost_id).rq_job_id
        db.session.commit()
    redis.Redis.from_url(app.config["REDIS_URL"]).delete(f"rq:job:{lost_rq_id}")

    result = runner.invoke(args=["reconcile"])
    assert f"lost from Redis: {lost_id}" in result.output
    assert _job(app, lost_id).status == JobStatus.FAILED and "disappeared" in _job(app, lost_id).error
    assert _job(app, kept_id).status == JobStatus.QUEUED


def test_cancelling_while_redis_is_down_still_cancels_without_a_500(app, signed_in):
    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # Redis went away after the job was queued
    app.extensions.pop("toolsmith_redis", None)
    response = post_form(client, f"/jobs/{job_id}/cancel")
    assert response.status_code == 302
    job = _job(app, job_id)
    assert job.status == JobStatus.CANCELLED and job.cancel_requested


def test_a_work_process_killed_past_its_time_limit_is_reported_as_such():
    from datetime import timedelta

    import redis
    from rq.job import Job
    from rq.utils import now

    from app.worker import _past_time_limit

    unused = redis.Redis(host="127.0.0.1", port=1)  # a client connects only when asked something
    job = Job.create("tests.background.job_functions.count_slowly", connection=unused, timeout=30)
    job.started_at = now() - timedelta(seconds=95)  # RQ kills at the limit + 60 s
    assert _past_time_limit(job) == 30
    job.started_at = now() - timedelta(seconds=5)  # killed early: out of memory, most likely
    assert _past_time_limit(job) is None


def test_a_job_marked_failed_while_it_still_runs_stops_at_its_next_update(app, signed_in):
    """A suspended machine: the heartbeat went stale, the reconciler failed the row, the process woke up.
    Going on could overwrite what was done since (a resumed run), so the job stops."""
    import threading

    from app.models.job import mark_finished
    from jobs.progress import JobLost
    from tests.background.job_functions import count_slowly

    client, user = signed_in()
    with app.app_context():
        row = BackgroundJob(
            owner_id=user.id, kind="test", title="count", func="count_slowly", queue="default"
        )
        db.session.add(row)
        db.session.commit()
        job_id = row.id
    outcome: list[BaseException] = []

    def work() -> None:
        with app.app_context():
            try:
                count_slowly(job_id, 30)
            except BaseException as exc:  # noqa: BLE001  (the test looks at what ended it)
                outcome.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    _wait_until_running(app, job_id)
    with app.app_context():
        mark_finished(job_id, JobStatus.FAILED, error="The worker stopped responding.")
    worker.join(10)
    assert not worker.is_alive() and outcome and isinstance(outcome[0], JobLost)
    assert "stopped responding" in _job(app, job_id).error  # the reconciler's reason stays


def test_a_running_push_cannot_be_stopped_halfway_from_the_jobs_page_but_a_queued_one_can(app, signed_in):
    client, user = signed_in()
    running = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    queued = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    with app.app_context():
        for job_id in (running, queued):
            db.session.get(BackgroundJob, job_id).kind = "hub_push"
        db.session.get(BackgroundJob, running).status = JobStatus.RUNNING
        db.session.commit()
    card = client.get(f"/jobs/{running}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "cannot be stopped halfway" in card and "/cancel" not in card
    post_form(client, f"/jobs/{running}/cancel")
    assert _job(app, running).status == JobStatus.RUNNING and not _job(app, running).cancel_requested
    post_form(client, f"/jobs/{queued}/cancel")
    assert _job(app, queued).status == JobStatus.CANCELLED


def test_cancelling_a_job_a_worker_took_since_it_was_read_asks_it_to_stop_instead(app, signed_in):
    from app.queueing import request_cancel

    client, user = signed_in()
    job_id = _enqueue(app, user.id, "tests.background.job_functions.count_slowly", 60)
    with app.app_context():
        read = db.session.get(BackgroundJob, job_id)  # the page read it queued...
        assert read.status == JobStatus.QUEUED
        db.session.execute(  # ...and a worker took it a moment later
            sa.update(BackgroundJob).where(BackgroundJob.id == job_id).values(status=JobStatus.RUNNING)
        )
        assert request_cancel(read) is False
        row = db.session.get(BackgroundJob, job_id)
        assert row.status == JobStatus.RUNNING and row.cancel_requested
