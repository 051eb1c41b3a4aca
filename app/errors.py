"""Error pages: every failure gets a clear message and the right status, HTMX requests included."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from app.extensions import db

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Too large", "The upload is larger than this server accepts."),
    429: ("Too many attempts", "Too many attempts in a short time. Wait a minute and try again."),
    500: ("Something went wrong", "The server hit an unexpected error. Nothing you entered was saved."),
}


def _render(status: int, detail: str | None = None):
    title, message = MESSAGES.get(status, ("Error", "The request failed."))
    if request.blueprint == "api" or request.path.startswith("/v1/"):
        # OpenAI's error shape: its clients turn it into a readable exception.
        kind = {429: "rate_limit_error"}.get(status, "invalid_request_error" if status < 500 else "api_error")
        code = "rate_limit_exceeded" if status == 429 else None
        return {"error": {"message": detail or message, "type": kind, "param": None, "code": code}}, status
    if request.accept_mimetypes.best == "application/json":
        return {"error": title, "message": detail or message}, status
    return render_template("errors/error.html", status=status, title=title, message=detail or message), status


def _holds_nul(values: MultiDict) -> bool:
    return any("\x00" in key or any("\x00" in value for value in items) for key, items in values.lists())


def _nul_filename() -> bool:
    """An upload's file name becomes the default name of what it creates (a dataset, a config)."""
    return any("\x00" in (upload.filename or "") for upload in request.files.values())


def register(app: Flask) -> None:
    @app.before_request
    def refuse_nul_characters():
        """No address, query, form field or upload's file name takes a NUL character, and PostgreSQL text
        cannot hold one: a value with one that reached a lookup (sign-in, a filter, a name check) was a
        500 there. Refused here, in one place, before any view reads it (saved rows are also cleaned:
        `models.base`)."""
        if "\x00" in request.path or _holds_nul(request.args) or _holds_nul(request.form) or _nul_filename():
            return _render(400, "The request contains a NUL character (\\0), which no field accepts.")
        return None

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _render(
            400,
            f"The form's security token is missing or expired ({error.description}) "
            "Reload the page and try again.",
        )

    @app.errorhandler(429)
    def too_many(error):
        if request.endpoint == "auth.login":
            return _render(429, "Too many failed sign-in attempts. Wait a minute before trying again.")
        return _render(429)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _render(error.code or 500)

    @app.errorhandler(FileNotFoundError)
    def file_gone(error: FileNotFoundError):
        # A dataset's or run's file removed between the page's check and its read: deleted from another
        # tab meanwhile. Logged, since a file missing for any other reason is worth a look.
        app.logger.warning("A file went missing during %s %s: %s", request.method, request.path, error)
        db.session.rollback()
        return _render(404, "What this page shows was deleted meanwhile (its file is gone).")

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()  # leave no half-written transaction behind
        return _render(500)
