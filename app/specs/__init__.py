"""Specs: imported OpenAPI documents, their operations and the tools those become."""

from flask import Blueprint

bp = Blueprint("specs", __name__)

from app.specs import routes  # noqa: E402,F401
