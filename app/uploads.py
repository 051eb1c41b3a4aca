"""Uploads that stream to disk where they will live, instead of through a temporary copy in /tmp.

A view marked `@streams_uploads(policy)` gets its policy run before anything reads the body (before
the CSRF check, which parses the form). The policy either refuses at once — too large, disk full — by
returning a response, or calls `stream_uploads_to(directory, max_bytes)`. werkzeug then writes each
file part into a NamedTemporaryFile in that directory. The file deletes itself when the request closes
it, so a refused or failed upload leaves nothing behind; a view keeps a file by hard-linking it into
place (same directory, so no copy and no second disk's worth of space).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from flask import Flask, Request, current_app, g, request
from flask_login import current_user


class StreamingUploadRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        directory = g.get("upload_directory")
        if directory is None:
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        return tempfile.NamedTemporaryFile("w+b", dir=directory, prefix=".upload-", suffix=".part")


def streams_uploads(policy: Callable[[], Any]):
    """Mark a view whose POST body is a large upload; `policy()` returns a refusal response or None."""

    def decorator(view):
        view.upload_policy = policy
        return view

    return decorator


def stream_uploads_to(directory: Path, max_bytes: int) -> None:
    """Send this request's file parts into `directory` and cap the request body at `max_bytes`."""
    directory.mkdir(parents=True, exist_ok=True)
    g.upload_directory = directory
    request.max_content_length = max_bytes


def _apply_upload_policy():
    if request.method != "POST" or not current_user.is_authenticated:
        return None  # anonymous bodies keep the small global MAX_CONTENT_LENGTH
    view = current_app.view_functions.get(request.endpoint or "")
    policy = getattr(view, "upload_policy", None)
    return policy() if policy is not None else None


def register(app: Flask) -> None:
    """Install the request class and the policy hook; call before CSRFProtect registers its own hook."""
    app.request_class = StreamingUploadRequest
    app.before_request(_apply_upload_policy)
