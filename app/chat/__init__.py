"""Chat playground: streamed conversations, tools with checked calls, and NL → API-call mode."""

from flask import Blueprint

bp = Blueprint("chat", __name__)

from app.chat import arena, compare, example_routes, rated, routes  # noqa: E402,F401
