"""Training runs: start from a saved config and a dataset, watch live, cancel, resume, retry."""

from flask import Blueprint

bp = Blueprint("training", __name__)

from app.training import routes, sweep_routes  # noqa: E402,F401
