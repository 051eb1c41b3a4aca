"""Writes to a run's row shared by the train and export jobs: stage updates, step metrics, settling.

A run moves between jobs (training on `train`, then export on `export`), and `TrainingRun.job_id`
always names the job that owns it now. A job that ends without leaving the run in a final stage
settles it (failed with the job's reason, or cancelled) unless the run has moved on to another job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.extensions import db
from app.models import BackgroundJob, RunMetric, RunStage, TrainingRun
from app.training.files import run_log_path


def log_path_of(run_id: int) -> Path:
    """Where the run's jobs append their log."""
    owner_id = db.session.execute(
        db.select(TrainingRun.owner_id).where(TrainingRun.id == run_id)
    ).scalar_one_or_none()
    return run_log_path(owner_id or 0, run_id)


class RunHandedOver(RuntimeError):
    """The run was resumed or retried while this job waited: the newer job owns it, this one stops."""


def check_still_owned(row: TrainingRun, job_id: int) -> None:
    """Raise `RunHandedOver` when the run names a newer job than this one. (An older id is the job
    that enqueued this one and has not yet recorded it: this job goes ahead.)"""
    if row.job_id and row.job_id > job_id:
        raise RunHandedOver(f"Run {row.id} now belongs to job {row.job_id}; job {job_id} stops.")


def update_run(run_id: int, **values: Any) -> None:
    values = {k: (v.value if isinstance(v, RunStage) else v) for k, v in values.items()}
    db.session.execute(db.update(TrainingRun).where(TrainingRun.id == run_id).values(**values))
    db.session.commit()


def record_step(run_id: int, report) -> None:
    db.session.add(
        RunMetric(
            run_id=run_id,
            step=report.step,
            epoch=report.epoch,
            loss=report.loss,
            eval_loss=report.eval_loss,
            learning_rate=report.learning_rate,
            grad_norm=report.grad_norm,
            tokens_per_second=report.tokens_per_second,
        )
    )
    values: dict[str, Any] = {
        "step": report.step,
        "total_steps": report.total_steps,
        "epoch": report.epoch,
        "eta_seconds": report.eta_seconds,
    }
    for name in ("loss", "learning_rate", "tokens_per_second"):
        if getattr(report, name) is not None:
            values[name] = getattr(report, name)
    db.session.execute(db.update(TrainingRun).where(TrainingRun.id == run_id).values(**values))
    db.session.commit()
    db.session.remove()


def cancel_requested(run_id: int) -> bool:
    """The user pressed Cancel: on the run, or on its job in the Jobs page."""
    row = db.session.execute(
        db.select(TrainingRun.cancel_requested, TrainingRun.job_id).where(TrainingRun.id == run_id)
    ).one_or_none()
    if row is None:
        return True  # the run was deleted under us
    if row.cancel_requested:
        return True
    if not row.job_id:
        return False
    return bool(
        db.session.execute(
            db.select(BackgroundJob.cancel_requested).where(BackgroundJob.id == row.job_id)
        ).scalar_one_or_none()
    )


def settle_run(run_id: int, job_id: int) -> None:
    """A run this job still owns that is not in a final stage failed (or was cancelled): record why."""
    from app.training.services import settle_interrupted

    db.session.rollback()
    row = db.session.get(TrainingRun, run_id)
    if row is not None and not row.is_final and row.job_id == job_id:
        settle_interrupted(row, db.session.get(BackgroundJob, job_id))
        db.session.commit()
    db.session.remove()
