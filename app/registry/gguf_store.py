"""GGUF files in MODEL_STORE: streamed uploads, admin-registered paths, and removal of managed files."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from flask import current_app, g, request
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app.model_store import PRIVATE_STORE_AREAS
from app.serving.gguf_info import GGUFError, GGUFInfo, read_gguf_info
from app.uploads import stream_uploads_to

UPLOADS_DIR = "uploads"
INCOMING_DIR = ".incoming"
MAX_FORM_PARTS = 64
ABANDONED_UPLOAD_SECONDS = 24 * 3600
# Bytes promised to uploads being received by this process (WEB_PROCESSES is 1 by default).
_reserved_bytes = 0
_reserving = threading.Lock()


class GGUFImportError(ValueError):
    """A user-facing reason a GGUF file was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def model_store() -> Path:
    return Path(current_app.config["MODEL_STORE"]).resolve()


def human_size(size: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def prepare_gguf_upload() -> None:
    """Before the body is read: refuse an oversized upload or a full disk, then stream parts into the store.

    Only multipart bodies (a file) are uploads; each must say its size (Content-Length), which the size
    and disk checks read, and werkzeug holds the body to it.
    """
    if request.mimetype != "multipart/form-data":
        return  # a form without a file (a remote endpoint, a store path) keeps the small global limits
    limit = current_app.config["MAX_GGUF_UPLOAD_BYTES"]
    length = request.content_length
    if length is None:
        # Browsers always send one; without it the disk check below could not count the file.
        raise GGUFImportError("The upload must say its size (a Content-Length header).", 411)
    if length > limit:
        raise GGUFImportError(
            f"The upload is {human_size(length)}; the limit is {human_size(limit)} (MAX_GGUF_UPLOAD_BYTES).",
            413,
        )
    store = model_store()
    store.mkdir(parents=True, exist_ok=True)
    with _reserving:
        free = shutil.disk_usage(store).free
        # Uploads under way still need the space they were promised: two at once must not both count it.
        needed = length + current_app.config["MODEL_STORE_MIN_FREE_BYTES"] + _reserved_bytes
        if free < needed:
            raise GGUFImportError(
                f"Not enough disk space in the model store: {human_size(free)} free, "
                f"{human_size(needed)} needed (the file, uploads under way and a reserve).",
                507,
            )
        _reserve(length)
    g.gguf_upload_reserved = length
    remove_abandoned_uploads(store / INCOMING_DIR)
    stream_uploads_to(store / INCOMING_DIR, limit)
    request.max_form_parts = MAX_FORM_PARTS  # the model form's fields and one file; not 1,000 parts


def remove_abandoned_uploads(incoming: Path, older_than_s: float = ABANDONED_UPLOAD_SECONDS) -> int:
    """Delete partial uploads nothing has written to for `older_than_s`: left by a web process killed
    mid-upload (a live one writes as the bytes arrive, which keeps its file's time fresh). Returns how
    many were removed."""
    if not incoming.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for part in incoming.glob(".upload-*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except FileNotFoundError:  # another request removed it first
            continue
    return removed


def release_upload_reservation(_exc: BaseException | None = None) -> None:
    """At the end of the request (a teardown): the upload's file is stored or gone, so is its claim."""
    reserved = g.pop("gguf_upload_reserved", 0)
    if reserved:
        with _reserving:
            _reserve(-reserved)


def _reserve(size: int) -> None:
    global _reserved_bytes
    _reserved_bytes += size


def store_uploaded_gguf(storage: FileStorage, owner_id: int | None) -> tuple[Path, GGUFInfo]:
    """Check an uploaded GGUF's header and keep the file under MODEL_STORE/uploads/<owner>/.

    The caller must delete the returned file if it fails to save the database row.
    """
    original = storage.filename or ""
    if not original.lower().endswith(".gguf"):
        raise GGUFImportError("Choose a .gguf file (llama.cpp's model format).")
    incoming = Path(getattr(storage.stream, "name", ""))
    if not incoming.is_file():  # not streamed by prepare_gguf_upload: refuse rather than guess
        raise GGUFImportError("The upload did not arrive; try again.")
    try:
        info = read_gguf_info(incoming)
    except GGUFError as exc:
        raise GGUFImportError(str(exc).replace(incoming.name, original)) from exc
    target_dir = model_store() / UPLOADS_DIR / (f"user-{owner_id}" if owner_id else "global")
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = secure_filename(Path(original).stem)[:80] or "model"
    target = target_dir / f"{stem}-{uuid.uuid4().hex[:8]}.gguf"
    os.link(incoming, target)  # the temporary name disappears when werkzeug closes the upload
    return target, info


def resolve_store_path(user_path: str) -> tuple[Path, GGUFInfo]:
    """An existing GGUF under MODEL_STORE (admins registering a file they copied there)."""
    store = model_store()
    candidate = Path(user_path)
    if not candidate.is_absolute():
        candidate = store / candidate
    try:
        resolved = candidate.resolve()  # follows symlinks and `..`, so neither can escape the store
        is_file = resolved.is_file()
    # A name the file system cannot hold (a part over 255 bytes), or a symlink loop (RuntimeError from
    # `resolve` on Python 3.11).
    except (OSError, ValueError, RuntimeError) as exc:
        raise GGUFImportError("That is not a usable file path.") from exc
    if not resolved.is_relative_to(store):
        raise GGUFImportError(f"The path must be inside the model store ({store}).")
    if resolved.relative_to(store).parts[:1] in [(area,) for area in PRIVATE_STORE_AREAS]:
        # Users' uploads and runs are theirs: registering one would share a private file with everyone,
        # and deleting that registration would delete the file under its owner's model.
        raise GGUFImportError(
            "That file belongs to a user's upload or training run; register a file you copied into the "
            "store yourself (outside uploads/ and runs/)."
        )
    if not is_file:
        raise GGUFImportError(f"There is no file at {resolved}.")
    try:
        return resolved, read_gguf_info(resolved)
    except GGUFError as exc:
        raise GGUFImportError(str(exc)) from exc


def is_managed_upload(path: str | None) -> bool:
    """Files Toolsmith stored from an upload (deleted with their model); registered paths are left alone."""
    if not path:
        return False
    return Path(path).resolve().is_relative_to(model_store() / UPLOADS_DIR)


def remove_managed_file(path: str | None) -> None:
    """Delete an uploaded file once no model row uses it any more."""
    from app.extensions import db
    from app.models import LLMModel

    if not is_managed_upload(path):
        return
    still_used = db.session.execute(db.select(LLMModel.id).where(LLMModel.gguf_path == path).limit(1)).first()
    if still_used is None:
        Path(path).unlink(missing_ok=True)
