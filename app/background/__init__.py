"""The Jobs page: the user's background jobs with live status."""

from flask import Blueprint

bp = Blueprint("background", __name__)

from app.background import routes  # noqa: E402,F401
