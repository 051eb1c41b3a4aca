"""The one progress helper every job uses.

    def run(job_id: int) -> dict:
        with tracked_job(job_id) as progress:
            progress.update(0.5, "Halfway")
            return progress.finish({"answer": 42})

`tracked_job` marks the row running, refreshes its heartbeat from a background thread (so a long
library call without progress updates still looks alive), mirrors progress into RQ's `job.meta`,
and always leaves the row in a final state: succeeded, failed (with the error) or cancelled.
If the process is killed outright, the stale heartbeat lets any worker mark it failed.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq import get_current_job

from app.extensions import db
from app.models import JobStatus
from app.models.job import is_cancel_requested, mark_finished, mark_running, record_heartbeat, record_progress


class JobCancelled(Exception):
    """Raised inside a job when the user asked it to stop."""


class JobLost(RuntimeError):
    """The job's row was marked failed while the job still ran (its heartbeat went stale: a suspended
    machine, a stopped process). Work done from here could overwrite what was done since, so it stops."""


class JobFailed(Exception):
    """A failure the user can act on (a row deleted under the job, a Hub file that is no dataset): its
    message is the job's error as it is. Any other exception is stored with its type, for a bug report."""


class JobSkipped(Exception):
    """The job's row is missing or no longer queued (cancelled before a worker reached it)."""


class Progress:
    """Handle a job uses to report progress; every write is a short transaction of its own."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.result: dict[str, Any] | None = None

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        """Record progress (0..1) and a short status line; raises JobCancelled if the user cancelled, and
        JobLost if the row is no longer running (failed by the stale-heartbeat reconciler)."""
        recorded = record_progress(self.job_id, fraction, message)
        rq_job = get_current_job()
        if rq_job is not None:
            rq_job.meta.update({"progress": fraction, "message": message})
            try:
                rq_job.save_meta()
            except RedisError:  # RQ's copy is a convenience: the database row is the truth, so a Redis
                pass  # restart mid-run must not fail a training run or an evaluation
        self.check_cancelled()
        db.session.remove()  # hold no connection during the work that follows
        if not recorded:
            raise JobLost(f"Job {self.job_id} was marked failed while it ran (no heartbeat); it stops here.")

    def check_cancelled(self) -> None:
        if is_cancel_requested(self.job_id):
            raise JobCancelled()

    def finish(self, result: dict[str, Any] | None = None) -> dict[str, Any] | None:
        self.result = result
        return result


class _Heartbeat(threading.Thread):
    def __init__(self, app, job_id: int, interval: float):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.app, self.job_id, self.interval = app, job_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.app.app_context():
                try:
                    record_heartbeat(self.job_id)
                except Exception:  # a transient DB error must not kill the heartbeat for good
                    db.session.rollback()
                finally:
                    db.session.remove()


def _worker_name() -> str | None:
    rq_job = get_current_job()
    return getattr(rq_job, "worker_name", None) if rq_job is not None else None


@contextmanager
def tracked_job(job_id: int) -> Iterator[Progress]:
    """Run a job body with its row kept current and always finalised."""
    app = current_app._get_current_object()
    if not mark_running(job_id, _worker_name(), os.getpid()):
        db.session.remove()
        raise JobSkipped(f"Job {job_id} is missing or no longer queued; nothing to do.")
    db.session.remove()
    heartbeat = _Heartbeat(app, job_id, app.config["JOB_HEARTBEAT_SECONDS"])
    heartbeat.start()
    progress = Progress(job_id)
    try:
        yield progress
    except JobCancelled:
        mark_finished(job_id, JobStatus.CANCELLED, message="Cancelled")
    except BaseException as exc:
        db.session.rollback()
        if isinstance(exc, JobFailed):
            detail = str(exc)
        else:
            detail = "".join(traceback.format_exception_only(exc)).strip()
        mark_finished(job_id, JobStatus.FAILED, error=detail, message="Failed")
        raise
    else:
        mark_finished(job_id, JobStatus.SUCCEEDED, message="Done", result=progress.result)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        db.session.remove()
