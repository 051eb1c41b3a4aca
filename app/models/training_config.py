"""Saved training configs: the whole config as JSON plus the linter's last verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class TrainingConfig(OwnedMixin, db.Model):
    __tablename__ = "training_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    template_type: Mapped[str | None] = mapped_column(sa.String(64))  # the template it started from
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # The linter's verdict when last saved: valid | warnings | errors (errors are never saved).
    validation_status: Mapped[str] = mapped_column(sa.String(16), default="valid")
    errors: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON, default=list)
    warnings: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON, default=list)
    times_used: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<TrainingConfig {self.id} {self.name!r}>"
