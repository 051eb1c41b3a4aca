"""Training configs: templates, the sectioned editor, the linter, estimates, JSON in and out."""

from flask import Blueprint

bp = Blueprint("configs", __name__)

from app.configs import routes  # noqa: E402,F401
