"""Home page."""

from __future__ import annotations

from flask import render_template
from flask_login import login_required

from app.background.services import count_jobs
from app.main import bp


@bp.route("/")
@login_required
def index():
    """Dashboard: where to start."""
    return render_template("main/index.html", job_count=count_jobs())


@bp.route("/healthz")
def healthz():
    """Liveness probe for load balancers: no database or Redis access."""
    return {"status": "ok"}
