"""Evaluations: score models' tool calls on a dataset's held-out rows or on BFCL, side by side."""

from flask import Blueprint

bp = Blueprint("evaluations", __name__)

from app.evaluations import routes  # noqa: E402,F401
