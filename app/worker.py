"""The RQ worker Toolsmith runs: RQ's forking Worker plus database bookkeeping.

- The parent process marks a job's row failed (or cancelled) the moment RQ sees its work horse die,
  instead of waiting for the heartbeat to go stale.
- A reconciler thread fails rows whose heartbeat went stale, so a job whose whole worker was killed
  is reported by any surviving worker within about a minute.
- The forked work horse gets a fresh database connection pool (sharing sockets across fork corrupts them).
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from flask import Flask
from rq import Worker
from rq.serializers import JSONSerializer

from app.extensions import db
from app.models import BackgroundJob, JobStatus
from app.models.job import fail_stale_jobs, mark_finished
from app.queueing import fail_lost_queued_jobs
from app.worker_capabilities import publish_in_background

log = logging.getLogger(__name__)


class ToolsmithWorker(Worker):
    """RQ Worker that keeps `BackgroundJob` rows truthful."""

    flask_app: Flask | None = None

    def register_birth(self):
        super().register_birth()
        try:
            publish_in_background(self.connection, self.name)
        except Exception:  # capabilities are advisory: never keep a worker from starting
            log.exception("Could not publish the capabilities of worker %s", self.name)

    def main_work_horse(self, job, queue):
        db.engine.dispose(close=False)  # the parent's pooled connections must not be reused after fork
        return super().main_work_horse(job, queue)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        stopped_on_request = self._stopped_job_id == job.id
        try:
            if not self.is_horse:  # in the horse, tracked_job already finalised the row
                self._finalise_row(job.id, stopped_on_request, exc_string, _past_time_limit(job))
        except Exception:
            log.exception("Could not record the failure of job %s in the database", job.id)
            db.session.rollback()
        return super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )

    def _finalise_row(
        self, rq_job_id: str, stopped_on_request: bool, exc_string: str, limit_s: int | None = None
    ) -> None:
        row = db.session.execute(
            sa.select(BackgroundJob).where(BackgroundJob.rq_job_id == rq_job_id)
        ).scalar_one_or_none()
        if row is None:
            return
        if stopped_on_request or row.cancel_requested:
            mark_finished(row.id, JobStatus.CANCELLED, message="Cancelled")
        else:
            reason = exc_string.strip() or "The job's process ended unexpectedly."
            if "terminated unexpectedly" in reason and limit_s is not None:
                # RQ kills a work process still busy a minute past the job's time limit.
                reason = f"The job ran past its time limit ({limit_s} s) and was stopped."
            elif "terminated unexpectedly" in reason:
                # SIGKILL with nobody asking is the kernel's out-of-memory killer, usually; a SIGTERM
                # is someone stopping the worker (a shutdown), which needs no such hint.
                killed = "(signal 9)" in reason  # RQ's words: "waitpid returned 9 (signal 9)"
                hint = " Out of memory is the usual cause." if killed else ""
                reason = f"The process running this job was killed ({reason.rstrip('; ')}).{hint}"
            mark_finished(row.id, JobStatus.FAILED, error=reason, message="Worker process died")
        db.session.remove()


def _past_time_limit(job) -> int | None:
    """The job's time limit in seconds when it has run past it (RQ's reason to kill it), else None."""
    timeout, started = getattr(job, "timeout", None), getattr(job, "started_at", None)
    if not timeout or timeout < 0 or started is None:
        return None
    from rq.utils import now

    return int(timeout) if (now() - started).total_seconds() > timeout else None


class StaleJobReconciler(threading.Thread):
    """Periodically fails rows whose heartbeat stopped (their worker died without a trace)."""

    def __init__(self, app: Flask, interval: float, stale_after: float):
        super().__init__(name="stale-job-reconciler", daemon=True)
        self.app, self.interval, self.stale_after = app, interval, stale_after
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.app.app_context():
                try:
                    failed = fail_stale_jobs(self.stale_after)
                    if failed:
                        log.warning("Marked jobs %s failed: their worker stopped sending heartbeats", failed)
                    lost = fail_lost_queued_jobs()
                    if lost:
                        log.warning("Marked jobs %s failed: they vanished from Redis", lost)
                except Exception:
                    log.exception("Stale job reconciliation failed")
                    db.session.rollback()
                finally:
                    db.session.remove()


def build_worker(queues, connection, name: str | None = None) -> ToolsmithWorker:
    return ToolsmithWorker(queues, connection=connection, serializer=JSONSerializer, name=name)
