"""The OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`) over the user's models, by API token."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from app.api import routes  # noqa: E402,F401
