"""Background jobs as the user sees them.

The row, not Redis, is the source of truth for a job's state. State changes are conditional UPDATEs
so that a late writer (a heartbeat, a worker noticing a dead horse) never overwrites a final state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_JOB_STATES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


UNSTOPPABLE_WHILE_RUNNING = ("hub_push", "dataset_push")


class BackgroundJob(OwnedMixin, db.Model):
    """One RQ job, owned by the user who started it."""

    __tablename__ = "background_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(200))
    queue: Mapped[str] = mapped_column(sa.String(20))
    func: Mapped[str] = mapped_column(sa.String(200))
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=JobStatus.QUEUED, index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(sa.String(500), default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    worker_name: Mapped[str | None] = mapped_column(sa.String(200))
    worker_pid: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATES

    @property
    def can_cancel(self) -> bool:
        """Active, and not a push to the Hub under way: stopped halfway, it would leave the repo with
        some files of the new version and not others (a queued push can still be cancelled)."""
        if not self.is_active or self.cancel_requested:
            return False
        return not (self.kind in UNSTOPPABLE_WHILE_RUNNING and self.status == JobStatus.RUNNING)

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or utcnow()) - self.started_at

    def __repr__(self) -> str:
        return f"<BackgroundJob {self.id} {self.kind} {self.status}>"


def _update_if(job_id: int, allowed: tuple[str, ...], **values: Any) -> bool:
    """Apply `values` only while the job is in one of `allowed` states; True when a row changed."""
    result = db.session.execute(
        sa.update(BackgroundJob)
        .where(BackgroundJob.id == job_id, BackgroundJob.status.in_([str(s) for s in allowed]))
        .values(**values)
    )
    db.session.commit()
    return result.rowcount == 1


def mark_running(job_id: int, worker_name: str | None, worker_pid: int) -> bool:
    now = utcnow()
    return _update_if(
        job_id,
        (JobStatus.QUEUED,),
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker_name=worker_name,
        worker_pid=worker_pid,
        message="Started",
    )


def record_heartbeat(job_id: int) -> bool:
    return _update_if(job_id, (JobStatus.RUNNING,), heartbeat_at=utcnow())


def record_progress(job_id: int, progress: float | None, message: str | None) -> bool:
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = min(max(float(progress), 0.0), 1.0)
    if message is not None:
        values["message"] = message[:500]
    return _update_if(job_id, (JobStatus.RUNNING,), **values)


def mark_finished(
    job_id: int,
    status: JobStatus,
    *,
    error: str | None = None,
    message: str | None = None,
    result: dict[str, Any] | None = None,
    only_from: tuple[JobStatus, ...] = ACTIVE_JOB_STATES,
) -> bool:
    """Move an active job (one in `only_from`) to a final state; True when it moved. A job already final
    (or, with `only_from`, in another state) is left alone."""
    assert status in FINAL_JOB_STATES
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if status is JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    if error is not None:
        values["error"] = error[:20000]
    if message is not None:
        values["message"] = message[:500]
    if result is not None:
        values["result"] = result
    return _update_if(job_id, only_from, **values)


def is_cancel_requested(job_id: int) -> bool:
    return bool(
        db.session.execute(
            sa.select(BackgroundJob.cancel_requested).where(BackgroundJob.id == job_id)
        ).scalar_one_or_none()
    )


def fail_stale_jobs(stale_after_seconds: float) -> list[int]:
    """Mark running jobs whose heartbeat stopped as failed; returns their ids.

    RQ itself may take many minutes to notice a dead worker, so the heartbeat decides.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    stale_ids = list(
        db.session.execute(
            sa.select(BackgroundJob.id).where(
                BackgroundJob.status == JobStatus.RUNNING,
                sa.func.coalesce(BackgroundJob.heartbeat_at, BackgroundJob.started_at) < cutoff,
            )
        ).scalars()
    )
    failed = []
    for job_id in stale_ids:
        reason = (
            f"The worker running this job stopped responding (no heartbeat for over "
            f"{int(stale_after_seconds)} s): its process was probably killed or the machine restarted."
        )
        # Re-check the heartbeat inside the UPDATE: it may have ticked since the SELECT.
        result = db.session.execute(
            sa.update(BackgroundJob)
            .where(
                BackgroundJob.id == job_id,
                BackgroundJob.status == JobStatus.RUNNING,
                sa.func.coalesce(BackgroundJob.heartbeat_at, BackgroundJob.started_at) < cutoff,
            )
            .values(status=JobStatus.FAILED, error=reason, message="Worker lost", finished_at=utcnow())
        )
        if result.rowcount:
            failed.append(job_id)
    db.session.commit()
    return failed
