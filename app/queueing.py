"""Redis connection, RQ queues, and the one way the web tier starts background jobs.

The web process names job functions by dotted string so it never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from flask import current_app
from rq import Queue
from rq.serializers import JSONSerializer

from app.config import embedded_redis_socket
from app.embedded_redis import EmbeddedRedis
from app.extensions import db
from app.models import BackgroundJob, JobStatus

QUEUE_NAMES = ("train", "export", "eval", "default")


def redis_connection() -> redis.Redis:
    """A client for the configured Redis (cached per app: the client holds a connection pool)."""
    client = current_app.extensions.get("toolsmith_redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=10)
        current_app.extensions["toolsmith_redis"] = client
    return client


def embedded_redis() -> EmbeddedRedis | None:
    """The embedded server this app uses, or None when REDIS_URL points elsewhere."""
    if not current_app.config["EMBEDDED_REDIS"]:
        return None
    instance = Path(current_app.instance_path)
    return EmbeddedRedis(embedded_redis_socket(instance), instance / "redis")


def ensure_redis() -> bool:
    """Start the embedded Redis when it is the configured one and is not running; True if started."""
    server = embedded_redis()
    return server.start() if server else False


def get_queue(name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"Unknown queue {name!r}; expected one of {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=redis_connection(), serializer=JSONSerializer)


class EnqueueError(RuntimeError):
    """Redis could not take the job; nothing was stored."""


def check_queue(name: str) -> None:
    """EnqueueError unless Redis answers: asked before work that a refused job would leave half done."""
    try:
        get_queue(name).connection.ping()
    except redis.RedisError as exc:
        raise EnqueueError(f"The job queue is unavailable ({exc.__class__.__name__}: {exc}).") from exc


def enqueue_job(
    *,
    owner_id: int | None,
    kind: str,
    title: str,
    func: str,
    args: Sequence[Any] = (),
    queue: str = "default",
    timeout: int | None = None,
) -> BackgroundJob:
    """Create the job's row and put it on an RQ queue; the job function receives the row id first.

    When Redis refuses the job the row is removed again, so an outage leaves no orphan row.
    """
    config = current_app.config
    job = BackgroundJob(owner_id=owner_id, kind=kind, title=title, func=func, queue=queue)
    db.session.add(job)
    db.session.flush()
    job.rq_job_id = f"toolsmith-{job.id}-{kind}"
    # Commit before enqueueing: a worker may pick the job up at once and must find its row.
    db.session.commit()
    try:
        get_queue(queue).enqueue(
            func,
            job.id,
            *args,
            job_id=job.rq_job_id,
            job_timeout=timeout or config["JOB_TIMEOUT_SECONDS"],
            result_ttl=config["JOB_RESULT_TTL_SECONDS"],
            failure_ttl=config["JOB_RESULT_TTL_SECONDS"],
            description=title,
        )
    except redis.RedisError as exc:
        db.session.delete(job)
        db.session.commit()
        raise EnqueueError(f"The job queue is unavailable ({exc.__class__.__name__}: {exc}).") from exc
    return job


def enqueue_for(row: Any, **job: Any) -> BackgroundJob:
    """Enqueue the job that fills `row` (a placeholder just committed: a dataset being generated, an
    evaluation) and note the job on it; when Redis refuses, the row goes too, so nothing waits forever."""
    try:
        queued = enqueue_job(**job)
    except Exception:
        db.session.delete(row)
        db.session.commit()
        raise
    row.job_id = queued.id
    db.session.commit()
    return queued


@dataclass(frozen=True)
class QueueWait:
    """Where a queued job stands: the jobs ahead of it and the workers that could take it."""

    queue: str
    ahead: int | None  # 0: next; None: no longer in the queue (a worker is taking it)
    workers: int  # workers listening on the queue, busy or not


def queue_wait(job: BackgroundJob) -> QueueWait | None:
    """For a queued job's page; None when Redis cannot say (the page then shows no position)."""
    from rq import Worker

    try:
        queue = get_queue(job.queue)
        return QueueWait(
            queue=job.queue,
            ahead=queue.get_job_position(job.rq_job_id) if job.rq_job_id else None,
            workers=Worker.count(connection=queue.connection, queue=queue),
        )
    except (redis.RedisError, ValueError):
        return None


def fail_lost_queued_jobs(min_age_seconds: float = 60.0) -> list[int]:
    """Fail rows still 'queued' whose RQ job no longer exists (Redis was flushed or replaced).

    Without this such a row would wait for a worker forever. Young rows are skipped: their enqueue
    may still be in flight.
    """
    from datetime import timedelta

    import sqlalchemy as sa
    from rq.job import Job

    from app.models import utcnow
    from app.models.job import mark_finished

    cutoff = utcnow() - timedelta(seconds=min_age_seconds)
    rows = db.session.execute(
        sa.select(BackgroundJob.id, BackgroundJob.rq_job_id).where(
            BackgroundJob.status == JobStatus.QUEUED, BackgroundJob.created_at < cutoff
        )
    ).all()
    connection = redis_connection()
    lost = []
    for job_id, rq_job_id in rows:
        if rq_job_id and Job.exists(rq_job_id, connection=connection):
            continue
        reason = (
            "The job disappeared from the queue before a worker started it (was Redis reset?). "
            "Start it again."
        )
        if mark_finished(job_id, JobStatus.FAILED, error=reason, message="Lost from the queue"):
            lost.append(job_id)
    return lost


QUEUED = (JobStatus.QUEUED,)


def request_cancel(job: BackgroundJob) -> bool:
    """Cancel a queued job at once; ask a running one to stop (cooperatively, then by RQ's stop command).
    True when the job ended here (cancelled before it started); False when it is running and will stop
    itself (it may have started between the caller's read and now)."""
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    from app.models.job import mark_finished

    connection = redis_connection()
    job.cancel_requested = True
    db.session.commit()
    if job.status == JobStatus.QUEUED:
        try:
            Job.fetch(job.rq_job_id, connection=connection, serializer=JSONSerializer).cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass
        except redis.RedisError:  # a worker that still gets it finds its row cancelled and skips it
            current_app.logger.warning("Redis unreachable: job %s cancelled in the database only", job.id)
        # Only while it is still queued: a worker may have taken it since it was read.
        before_start = "Cancelled before it started"
        if mark_finished(job.id, JobStatus.CANCELLED, message=before_start, only_from=QUEUED):
            db.session.refresh(job)
            return True
        db.session.refresh(job)
    if job.status == JobStatus.RUNNING:
        try:
            send_stop_job_command(connection, job.rq_job_id, serializer=JSONSerializer)
        except (InvalidJobOperation, NoSuchJobError):
            pass
        except redis.RedisError:  # the flag committed above still stops it at its next progress check
            current_app.logger.warning("Redis unreachable: job %s asked to stop by its flag only", job.id)
    return False
