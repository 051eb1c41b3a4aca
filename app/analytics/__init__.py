"""Analytics: per-model latency, token and tool-call figures over the user's chat messages."""

from flask import Blueprint

bp = Blueprint("analytics", __name__)

from app.analytics import routes  # noqa: E402,F401
