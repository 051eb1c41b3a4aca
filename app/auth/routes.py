"""Account pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import bp
from app.auth.forms import (
    ApiTokenForm,
    ChangePasswordForm,
    HubTokenForm,
    LoginForm,
    RegisterForm,
    RevokeApiTokenForm,
    normalise_email,
)
from app.auth.services import (
    AccountError,
    RegistrationClosed,
    authenticate,
    change_password,
    create_account,
    issue_api_token,
    registration_allowed,
)
from app.extensions import db, limiter

UNPROCESSABLE_STATUS = 422


def _login_failed(response) -> bool:
    """Only failed sign-ins count against the rate limit."""
    return bool(g.get("login_failed"))


def _account_key() -> str:
    return "account:" + normalise_email(request.form.get("email"))[:254]


def _safe_next(target: str | None) -> str:
    """Follow `next` only to a path on this site (no open redirects)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("main.index")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["REGISTER_LIMIT"], methods=["POST"], scope="register")
def register():
    """Create an account; the first one is the admin."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    if not registration_allowed(current_app.config["REGISTRATION_OPEN"]):
        return render_template("auth/registration_closed.html"), 403
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = create_account(
                form.email.data, form.password.data, open_registration=current_app.config["REGISTRATION_OPEN"]
            )
        except RegistrationClosed:  # another account was created while this one's form was being checked
            return render_template("auth/registration_closed.html"), 403
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            login_user(user)
            note = " You are the administrator of this Toolsmith." if user.is_admin else ""
            flash(f"Welcome to Toolsmith, {user.email}.{note}", "success")
            return redirect(url_for("main.index"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_FAILURE_LIMIT"],
    methods=["POST"],
    deduct_when=_login_failed,
    scope="login-ip",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_FAILURE_LIMIT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_login_failed,
    scope="login-account",
)
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            g.login_failed = True
            form.password.errors.append("Wrong email or password.")
        elif not login_user(user, remember=form.remember.data):
            form.email.errors.append("This account is disabled. Ask an administrator to enable it.")
        else:
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, so a link on another site cannot sign you out)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """Change your password; other sessions are signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            change_password(current_user, form.current_password.data, form.new_password.data)
        except AccountError as exc:
            form.current_password.errors.append(str(exc))
        else:
            login_user(current_user._get_current_object())  # the session token changed: re-issue the cookie
            flash("Your password was changed.", "success")
            return redirect(url_for("auth.password"))
    return _account_page(form=form)


def _account_page(status: int = 200, **forms):
    """The account page: password, Hugging Face token, API tokens (a new token's value only here, once)."""
    from app.api.tokens import request_counts, tokens_of

    context = {
        "form": ChangePasswordForm(formdata=None),
        "hub_form": HubTokenForm(formdata=None),
        "api_form": ApiTokenForm(formdata=None),
        "revoke_form": RevokeApiTokenForm(),
        "new_token": None,
        **forms,
    }
    return render_template(
        "auth/password.html",
        api_tokens=tokens_of(current_user.id),
        api_requests=request_counts(current_user.id),
        **context,
    ), status


@bp.route("/api-tokens", methods=["POST"])
@login_required
def create_api_token():
    form = ApiTokenForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _account_page(UNPROCESSABLE_STATUS, api_form=form)
    try:
        plaintext = issue_api_token(current_user.id, form.name.data)
    except AccountError as exc:
        form.name.errors.append(str(exc))
        return _account_page(UNPROCESSABLE_STATUS, api_form=form)
    # Rendered, never flashed: a flash would put the token into the session cookie.
    response = _account_page(new_token=plaintext)
    return response[0], response[1], {"Cache-Control": "no-store"}


@bp.route("/api-tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_api_token(token_id: int):
    from app.models import ApiToken
    from app.ownership import get_owned_or_404

    token = get_owned_or_404(ApiToken, token_id)
    if not RevokeApiTokenForm().validate_on_submit():
        abort(400)
    name = token.name
    db.session.delete(token)
    db.session.commit()
    flash(f"Revoked the API token “{name}”. Programs using it can no longer sign in.", "info")
    return redirect(url_for("auth.password") + "#api-tokens")


@bp.route("/hub-token", methods=["POST"])
@login_required
def hub_token():
    """Save or remove the Hugging Face token the export job pushes with (stored encrypted)."""
    form = HubTokenForm()
    if form.validate_on_submit():
        if form.remove.data:
            current_user.set_hub_token(None)
            flash("Removed your Hugging Face token.", "info")
        else:
            current_user.set_hub_token(form.token.data)
            flash("Saved your Hugging Face token (it is stored encrypted and not shown again).", "success")
        db.session.commit()
        return redirect(url_for("auth.password"))
    if "csrf_token" in form.errors:
        abort(400)
    return _account_page(UNPROCESSABLE_STATUS, hub_form=form)
