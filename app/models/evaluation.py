"""Evaluations: several models scored on the same tool-calling cases (a dataset's held-out rows or BFCL)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class Benchmark(enum.StrEnum):
    DATASET = "dataset"  # a dataset's eval split (all rows when it marks none)
    BFCL = "bfcl"  # the bundled Berkeley Function Calling Leaderboard categories


class EvaluationStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_EVALUATION_STATES = (EvaluationStatus.DONE, EvaluationStatus.FAILED, EvaluationStatus.CANCELLED)


class Evaluation(OwnedMixin, db.Model):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    benchmark: Mapped[str] = mapped_column(sa.String(16))
    dataset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("datasets.id", ondelete="SET NULL"))
    dataset_name: Mapped[str | None] = mapped_column(sa.String(120))  # kept when the dataset is deleted
    categories: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # BFCL categories
    cases_per_category: Mapped[int] = mapped_column(default=20)
    constrained: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default=EvaluationStatus.QUEUED.value)
    error: Mapped[str | None] = mapped_column(sa.Text)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("background_jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    results: Mapped[list[EvaluationResult]] = relationship(
        back_populates="evaluation",
        cascade="all, delete-orphan",
        order_by="EvaluationResult.position",
    )

    @property
    def finished(self) -> bool:
        return self.status in FINAL_EVALUATION_STATES

    def __repr__(self) -> str:
        return f"<Evaluation {self.id} {self.benchmark} {self.status}>"


class EvaluationResult(db.Model):
    """One model's scores in an evaluation; its `EvaluationItem`s hold each case's verdict."""

    __tablename__ = "evaluation_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("evaluations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("llm_models.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(sa.String(120))  # kept when the model is deleted
    provider: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending|running|done|failed
    error: Mapped[str | None] = mapped_column(sa.Text)
    cases: Mapped[int] = mapped_column(default=0)
    correct: Mapped[int] = mapped_column(default=0)
    valid: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)  # cases the provider failed to answer
    per_category: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    latency_s: Mapped[float] = mapped_column(default=0.0)  # summed over the cases
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)

    evaluation: Mapped[Evaluation] = relationship(back_populates="results")
    items: Mapped[list[EvaluationItem]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="EvaluationItem.position"
    )

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.cases if self.cases else None

    @property
    def valid_rate(self) -> float | None:
        return self.valid / self.cases if self.cases else None

    @property
    def mean_latency_s(self) -> float | None:
        answered = self.cases - self.errors
        return self.latency_s / answered if answered > 0 else None

    def category_accuracy(self, category: str) -> float | None:
        entry = self.per_category.get(category) or {}
        return entry["correct"] / entry["cases"] if entry.get("cases") else None


class EvaluationItem(db.Model):
    """One case as one model answered it: a row each, so a long evaluation writes O(cases), not O(cases²)."""

    __tablename__ = "evaluation_items"
    __table_args__ = (sa.Index("ix_evaluation_items_result_position", "result_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluation_results.id", ondelete="CASCADE"))
    position: Mapped[int]
    case_id: Mapped[str] = mapped_column(sa.String(120))
    category: Mapped[str] = mapped_column(sa.String(40))
    prompt: Mapped[str] = mapped_column(sa.Text, default="")  # the request's last user turn
    correct: Mapped[bool]
    valid: Mapped[bool]
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    expected: Mapped[str] = mapped_column(sa.Text, default="")
    got: Mapped[str] = mapped_column(sa.Text, default="")
    reply: Mapped[str] = mapped_column(sa.Text, default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    latency_s: Mapped[float | None]
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
