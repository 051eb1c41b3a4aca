"""Training runs and their per-step metrics."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class RunStage(enum.StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    TEACHER = "teacher"  # Teacher Mode: the teacher writes the targets
    TRAINING = "training"
    EXPORTING = "exporting"  # training done, the export job is queued on `export`
    MERGING = "merging"
    CONVERTING = "converting"
    QUANTIZING = "quantizing"
    EVALUATING = "evaluating"
    REGISTERING = "registering"
    PUSHING = "pushing"  # to the Hugging Face Hub, when the config asks
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_RUN_STAGES = frozenset({RunStage.DONE, RunStage.FAILED, RunStage.CANCELLED})


class TrainingSweep(OwnedMixin, db.Model):
    """Several runs of one config on one dataset, each with other values for a few hyper-parameters."""

    __tablename__ = "training_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(160))
    config_id: Mapped[int | None] = mapped_column(sa.ForeignKey("training_configs.id", ondelete="SET NULL"))
    config_name: Mapped[str] = mapped_column(sa.String(120), default="")
    dataset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("datasets.id", ondelete="SET NULL"))
    dataset_name: Mapped[str] = mapped_column(sa.String(120), default="")
    # The swept values per dotted config key, in the order given: {"training.learning_rate": [1e-4, 2e-4]}.
    axes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<TrainingSweep {self.id} {self.name!r}>"


class TrainingRun(OwnedMixin, db.Model):
    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(160))
    config_id: Mapped[int | None] = mapped_column(sa.ForeignKey("training_configs.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the snapshot the run uses, never edited
    dataset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("datasets.id", ondelete="SET NULL"))
    dataset_name: Mapped[str] = mapped_column(sa.String(120), default="")
    stage: Mapped[str] = mapped_column(sa.String(16), default=RunStage.QUEUED.value)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("background_jobs.id", ondelete="SET NULL"))
    step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    epoch: Mapped[float | None] = mapped_column()
    loss: Mapped[float | None] = mapped_column()
    learning_rate: Mapped[float | None] = mapped_column()
    tokens_per_second: Mapped[float | None] = mapped_column()
    eta_seconds: Mapped[float | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    output_dir: Mapped[str | None] = mapped_column(sa.String(1000))
    last_checkpoint: Mapped[str | None] = mapped_column(sa.String(1000))
    resumed_from_step: Mapped[int | None] = mapped_column()
    # Early stopping: the evaluation whose weights the run kept, and whether the run ended before its plan.
    best_step: Mapped[int | None] = mapped_column()
    best_eval_loss: Mapped[float | None] = mapped_column()
    stopped_early: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    model_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)  # registered GGUFs
    evaluation: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    hub_push: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # repo, url or error
    sweep_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("training_sweeps.id", ondelete="SET NULL"), index=True
    )
    sweep_point: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # this run's swept values
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def is_final(self) -> bool:
        return self.stage in FINAL_RUN_STAGES

    def __repr__(self) -> str:
        return f"<TrainingRun {self.id} {self.stage}>"


class RunMetric(db.Model):
    """One logged step (train loss, learning rate, ...) or evaluation (eval loss) of a run."""

    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("training_runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column()
    epoch: Mapped[float | None] = mapped_column()
    loss: Mapped[float | None] = mapped_column()
    eval_loss: Mapped[float | None] = mapped_column()
    learning_rate: Mapped[float | None] = mapped_column()
    grad_norm: Mapped[float | None] = mapped_column()
    tokens_per_second: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
