"""Training datasets: a JSONL file in the one tool-call format, owned by a user."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class DatasetKind(enum.StrEnum):
    SFT = "sft"  # conversations: messages (with tool calls) and the tools offered
    DPO = "dpo"  # preference pairs: prompt, chosen, rejected


class DatasetStatus(enum.StrEnum):
    GENERATING = "generating"  # a background job is writing it
    READY = "ready"
    FAILED = "failed"


class Dataset(OwnedMixin, db.Model):
    """Rows live in a JSONL file under DATASET_STORE (one per dataset); this row holds what pages show."""

    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(8), default=DatasetKind.SFT.value)
    source: Mapped[str] = mapped_column(sa.String(32), default="upload")  # upload | generated
    source_format: Mapped[str] = mapped_column(sa.String(32), default="")  # sharegpt, openai, toolsmith, ...
    spec_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_specs.id", ondelete="SET NULL"))
    file_path: Mapped[str | None] = mapped_column(sa.String(1000))
    sample_count: Mapped[int] = mapped_column(default=0)
    train_count: Mapped[int] = mapped_column(default=0)
    eval_count: Mapped[int] = mapped_column(default=0)  # rows the file marks "split": "eval"
    stats: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # generation options
    # The last push to the Hugging Face Hub: {"repo", "pushing"} while its job runs, then "url" or "error".
    hub_push: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default=DatasetStatus.READY.value)
    error: Mapped[str | None] = mapped_column(sa.Text)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("background_jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Dataset {self.id} {self.name!r} {self.kind}>"
