"""The model registry: local GGUF files and remote endpoints users can chat with."""

from flask import Blueprint

bp = Blueprint("models", __name__)

from app.registry import routes  # noqa: E402,F401
