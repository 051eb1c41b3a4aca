"""Job listing, starting and housekeeping for the Jobs page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import BackgroundJob, User
from app.models.job import ACTIVE_JOB_STATES, fail_stale_jobs
from app.ownership import owned
from app.queueing import EnqueueError, enqueue_job


def reconcile_stale_jobs() -> list[int]:
    """Fail running jobs whose worker died; cheap enough to run on every Jobs page poll."""
    return fail_stale_jobs(current_app.config["JOB_STALE_SECONDS"])


def list_jobs(limit: int = 100) -> list[BackgroundJob]:
    query = (
        owned(BackgroundJob).order_by(BackgroundJob.created_at.desc(), BackgroundJob.id.desc()).limit(limit)
    )
    return list(db.session.execute(query).scalars())


def start_system_check(user: User) -> BackgroundJob:
    """Queue a check, unless this user's last one has not ended yet: one at a time per user, so no one
    can fill the shared default queue (dataset jobs wait behind it) with checks."""
    waiting = db.session.execute(
        sa.select(BackgroundJob.id).where(
            BackgroundJob.owner_id == user.id,
            BackgroundJob.kind == "system_check",
            BackgroundJob.status.in_(ACTIVE_JOB_STATES),
        )
    ).first()
    if waiting is not None:
        raise EnqueueError("Your last system check has not finished yet: it is on this page.")
    return enqueue_job(
        owner_id=user.id,
        kind="system_check",
        title="System check",
        func="jobs.system_check.run",
        queue="default",
        timeout=600,
    )


def count_jobs() -> int:
    """How many jobs the current user has."""
    mine = owned(BackgroundJob).subquery()
    return db.session.execute(sa.select(sa.func.count()).select_from(mine)).scalar_one()
