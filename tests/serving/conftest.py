"""Serving fixtures: one real llama-cpp-python OpenAI-compatible server per test session."""

from __future__ import annotations

import pytest

from app.serving.default_model import default_gguf_path
from tests.llama_server import llama_server

LLAMA_SERVER_ALIAS = "smollm2"


@pytest.fixture(scope="session")
def llama_server_url():
    """Base URL (ending in /v1) of `python -m llama_cpp.server` serving the default SmolLM2 GGUF."""
    with llama_server(default_gguf_path(), LLAMA_SERVER_ALIAS) as base_url:
        yield base_url
