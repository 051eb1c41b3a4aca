"""Admin pages."""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.admin import bp
from app.admin.forms import UserActionForm
from app.admin.services import AdminActionError, set_admin, set_disabled
from app.extensions import db, htmx
from app.models import User


def admin_required(view):
    """Only admins; others get 404 so the admin area is not advertised."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


@bp.route("/users")
@admin_required
def users():
    """List every account with its role and state."""
    rows = db.session.execute(sa.select(User).order_by(User.created_at, User.id)).scalars().all()
    return render_template("admin/users.html", users=rows, form=UserActionForm())


@bp.route("/users/<int:user_id>", methods=["POST"])
@admin_required
def user_action(user_id: int):
    """Disable, enable, promote or demote one account."""
    target = db.session.get(User, user_id) or abort(404)
    form = UserActionForm()
    error = None
    if not form.validate_on_submit():
        error = "; ".join(form.action.errors) or "The request was not valid."
    else:
        actions = {
            "disable": lambda: set_disabled(current_user, target, True),
            "enable": lambda: set_disabled(current_user, target, False),
            "make_admin": lambda: set_admin(current_user, target, True),
            "revoke_admin": lambda: set_admin(current_user, target, False),
        }
        try:
            actions[form.action.data]()
        except AdminActionError as exc:
            error = str(exc)
    if htmx:
        return render_template("admin/_user_row.html", user=target, form=UserActionForm(), error=error)
    flash(error or f"Updated {target.email}.", "error" if error else "success")
    return redirect(url_for("admin.users"))


@bp.route("/system")
@admin_required
def system():
    """Workers, queues and disk use."""
    from app.admin.system import system_report

    return render_template("admin/system.html", report=system_report())
