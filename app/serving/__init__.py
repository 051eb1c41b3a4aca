"""Serving layer: one interface to generate from messages, whatever the provider.

Local GGUF models run in-process on llama.cpp (`local.py`). Remote providers (Hugging Face Inference,
OpenAI-compatible endpoints) and tool-call parsing arrive with the model registry issue.
"""

from app.serving.types import ChatResult, SamplingParams

__all__ = ["ChatResult", "SamplingParams"]
