"""Imported OpenAPI documents: the raw text as uploaded and the normalised operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class ApiSpec(OwnedMixin, db.Model):
    """One version of one spec. Re-uploading under the same name adds a version and keeps the old ones."""

    __tablename__ = "api_specs"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name", "version_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    version_number: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(sa.String(300), default="")
    api_version: Mapped[str] = mapped_column(sa.String(64), default="")
    spec_format: Mapped[str] = mapped_column(sa.String(32))
    source_filename: Mapped[str | None] = mapped_column(sa.String(255))
    raw_text: Mapped[str] = mapped_column(sa.Text)
    normalised: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    operation_count: Mapped[int] = mapped_column(default=0)
    base_urls: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version_number}" if self.version_number > 1 else self.name

    def __repr__(self) -> str:
        return f"<ApiSpec {self.id} {self.name!r} v{self.version_number}>"
