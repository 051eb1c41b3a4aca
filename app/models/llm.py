"""Registered language models: local GGUF files and remote endpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import OwnedMixin, utcnow


class Provider(StrEnum):
    LOCAL_GGUF = "local_gguf"
    HF_INFERENCE = "hf_inference"
    OPENAI_COMPATIBLE = "openai_compatible"


class LLMModel(OwnedMixin, db.Model):
    """A model users can chat with. `owner_id` NULL: a global model managed by admins.

    The API key is stored only as a Fernet token (`app.crypto`); nothing renders or returns it.
    """

    __tablename__ = "llm_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    provider: Mapped[str] = mapped_column(sa.String(32))
    base_url: Mapped[str | None] = mapped_column(sa.String(500))
    model_id: Mapped[str | None] = mapped_column(sa.String(300))
    gguf_path: Mapped[str | None] = mapped_column(sa.String(1000))
    api_key_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    supports_streaming: Mapped[bool] = mapped_column(default=True)
    supports_tools: Mapped[bool] = mapped_column(default=False)
    context_length: Mapped[int | None]
    max_tokens: Mapped[int] = mapped_column(default=512)
    enabled: Mapped[bool] = mapped_column(default=True)

    # Read from the GGUF header for local models.
    architecture: Mapped[str | None] = mapped_column(sa.String(64))
    parameter_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    quantization: Mapped[str | None] = mapped_column(sa.String(32))
    file_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    has_chat_template: Mapped[bool | None]

    # Training provenance, filled by the training pipeline.
    training_method: Mapped[str | None] = mapped_column(sa.String(32))
    base_model: Mapped[str | None] = mapped_column(sa.String(300))
    training_dataset: Mapped[str | None] = mapped_column(sa.String(300))
    training_date: Mapped[datetime | None]
    lora_config: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    evaluation_metrics: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # The run that produced it; a deleted run leaves the model (and its GGUF) in the registry.
    training_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("training_runs.id", ondelete="SET NULL")
    )

    # Last "Test connection" outcome.
    last_test_ok: Mapped[bool | None]
    last_test_message: Mapped[str | None] = mapped_column(sa.String(500))
    last_tested_at: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def set_api_key(self, plaintext: str | None) -> None:
        from app.crypto import encrypt_secret

        self.api_key_encrypted = encrypt_secret(plaintext) if plaintext else None

    def api_key(self) -> str | None:
        """The decrypted key, for the serving layer only: never pass it to a template or a log."""
        from app.crypto import decrypt_secret

        return decrypt_secret(self.api_key_encrypted) if self.api_key_encrypted else None

    def __repr__(self) -> str:  # deliberately without the key
        return f"<LLMModel {self.id} {self.name!r} {self.provider}>"
