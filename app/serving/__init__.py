"""Serving layer: one interface to generate from messages, whatever the provider.

Local GGUF models run in-process on llama.cpp (`local.py`). Remote providers (Hugging Face Inference,
OpenAI-compatible endpoints) and tool-call parsing arrive with the model registry issue.
"""

from __future__ import annotations

from flask import current_app

from app.serving.types import ChatResult, SamplingParams

__all__ = ["ChatResult", "SamplingParams", "local_models"]


def local_models():
    """This process's one `LocalModelHolder`, sized from config (created on first use)."""
    from app.serving.local import LocalModelHolder

    holder = current_app.extensions.get("toolsmith_local_models")
    if holder is None:
        config = current_app.config
        holder = LocalModelHolder(
            max_loaded=config["MAX_LOADED_MODELS"],
            n_threads=config["LLAMA_THREADS"],
            n_ctx=config["LLAMA_CONTEXT"],
        )
        current_app.extensions["toolsmith_local_models"] = holder
    return holder
