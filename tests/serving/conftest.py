"""Serving fixtures live in tests/conftest.py (`llama_server_url` is shared with the registry tests)."""

from __future__ import annotations

from tests.conftest import LLAMA_SERVER_ALIAS

__all__ = ["LLAMA_SERVER_ALIAS"]
