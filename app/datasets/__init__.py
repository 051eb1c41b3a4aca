"""Datasets: rows in the one tool-call format, imported from files or generated from an OpenAPI spec."""

from flask import Blueprint

bp = Blueprint("datasets", __name__)

from app.datasets import routes  # noqa: E402,F401
