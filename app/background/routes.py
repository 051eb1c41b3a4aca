"""Jobs pages. A job's card polls itself until the job ends (HTTP 286 stops htmx polling)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.background import bp
from app.background.forms import JobActionForm
from app.background.services import list_jobs, reconcile_stale_jobs, start_system_check
from app.extensions import htmx
from app.models import BackgroundJob
from app.ownership import get_owned_or_404
from app.queueing import EnqueueError, request_cancel

HTMX_STOP_POLLING = 286


@bp.route("/")
@login_required
def index():
    """The user's jobs, newest first."""
    reconcile_stale_jobs()
    return render_template("background/index.html", jobs=list_jobs(), form=JobActionForm())


@bp.route("/<int:job_id>")
@login_required
def detail(job_id: int):
    """One job: the full page, or just its card when htmx polls."""
    reconcile_stale_jobs()
    job = get_owned_or_404(BackgroundJob, job_id)
    if htmx:
        status = 200 if job.is_active else HTMX_STOP_POLLING
        return render_template("background/_job.html", job=job, form=JobActionForm()), status
    return render_template("background/detail.html", job=job, form=JobActionForm())


@bp.route("/system-check", methods=["POST"])
@login_required
def system_check():
    """Queue a system check on a worker."""
    form = JobActionForm()
    if form.validate_on_submit():
        try:
            job = start_system_check(current_user)
        except EnqueueError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Queued “{job.title}”. It starts as soon as a worker is free.", "success")
    return redirect(url_for("background.index"))


@bp.route("/<int:job_id>/cancel", methods=["POST"])
@login_required
def cancel(job_id: int):
    """Cancel a queued job or ask a running one to stop."""
    job = get_owned_or_404(BackgroundJob, job_id)
    form = JobActionForm()
    if form.validate_on_submit() and job.can_cancel:
        request_cancel(job)
    if htmx:
        return render_template("background/_job.html", job=job, form=JobActionForm())
    return redirect(url_for("background.detail", job_id=job.id))
