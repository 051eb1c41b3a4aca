"""Pushing a trained model to the Hugging Face Hub: one repo, one commit.

The merged weights (safetensors, config, tokenizer files), the GGUF exports and a model card go up in a single
`create_commit`, so the repo never shows half a model. Every failure becomes a `HubPushError` whose message a
user can act on and never contains the token; the models stay registered here whatever the Hub says.

huggingface_hub 2.x sends everything through one process-wide httpx2 session that has no time limit, and
`create_repo` / `create_commit` take none. So a request hook on that session applies `timeout` to the requests
this thread sends during a push (a context variable), and leaves other Hub traffic in the process alone.
Large files the real Hub wants as LFS go through hf_xet, which has its own client and its own retries.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SERVER_TEXT_LIMIT = 300  # characters of the Hub's own error text shown to the user
OFFLINE = "Hugging Face Hub access is switched off here (HF_HUB_OFFLINE)."


class HubPushError(RuntimeError):
    """A message a user can act on."""


@dataclass
class HubPushResult:
    repo_id: str
    url: str
    commit: str | None
    files: list[str]


def push_to_hub(
    token: str,
    repo_id: str,
    *,
    private: bool,
    ggufs: dict[str, Path],
    merged_dir: Path | None,
    model_card: str,
    endpoint: str | None = None,
    timeout: float = 30,
) -> HubPushResult:
    """Create `repo_id` unless it exists, then commit every file of `merged_dir`, the GGUFs (by file name)
    and `model_card` as README.md together. An existing repo keeps its visibility: the Hub ignores `private`
    then, and flipping a private repo public behind the user's back is not ours to do."""
    if not token:
        # Without one huggingface_hub would fall back to HF_TOKEN or this machine's cached login.
        raise HubPushError("Pushing to the Hub needs a Hugging Face token with write access.")
    return push_files(token, repo_id, _files_to_upload(ggufs, merged_dir, model_card), private=private,
                      endpoint=endpoint, timeout=timeout)  # fmt: skip


def push_files(
    token: str,
    repo_id: str,
    uploads: dict[str, Path | bytes],
    *,
    private: bool,
    repo_type: str = "model",
    endpoint: str | None = None,
    timeout: float = 30,
) -> HubPushResult:
    """Create the repo (of `repo_type`: "model" or "dataset") unless it exists, then commit `uploads`
    (path in the repo -> local file or bytes) in one commit; failures become a `HubPushError`."""
    if not token:
        raise HubPushError("Pushing to the Hub needs a Hugging Face token with write access.")
    try:
        return _push(token, repo_id, private, uploads, endpoint, timeout, repo_type)
    except Exception as exc:
        message = _describe_failure(exc, repo_id, endpoint, timeout)
        if message is None:
            raise
        raise HubPushError(message.replace(token, "***")) from exc  # a server may echo the token back


def _files_to_upload(
    ggufs: dict[str, Path], merged_dir: Path | None, model_card: str
) -> dict[str, Path | bytes]:
    """path in the repo -> local file (or the card's bytes); later entries win a clash, the card last."""
    from huggingface_hub.utils import FORBIDDEN_FOLDERS

    uploads: dict[str, Path | bytes] = {}
    if merged_dir is not None:
        if not merged_dir.is_dir():
            raise HubPushError(f"The merged model folder is missing on this worker ({merged_dir}).")
        for path in sorted(merged_dir.rglob("*")):
            relative = path.relative_to(merged_dir)
            # The Hub refuses paths under .git/ and .cache/; they hold tools' state, not the model.
            if path.is_file() and not any(part in FORBIDDEN_FOLDERS for part in relative.parts):
                uploads[relative.as_posix()] = path
    for path in ggufs.values():
        if not path.is_file():
            raise HubPushError(f"The GGUF file {path.name} is missing on this worker ({path}).")
        uploads[path.name] = path
    uploads["README.md"] = model_card.encode()
    return uploads


def _push(
    token: str,
    repo_id: str,
    private: bool,
    uploads: dict[str, Path | bytes],
    endpoint: str | None,
    timeout: float,
    repo_type: str = "model",
) -> HubPushResult:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    with _request_timeout(timeout):
        repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        full_id = repo_url.repo_id or repo_id  # "name" alone lands in the token owner's namespace
        operations = [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=source) for p, source in uploads.items()
        ]
        commit = api.create_commit(
            full_id, operations, commit_message=f"Toolsmith: {len(operations)} files", repo_type=repo_type
        )
    return HubPushResult(repo_id=full_id, url=str(repo_url), commit=commit.oid, files=list(uploads))


def _describe_failure(exc: BaseException, repo_id: str, endpoint: str | None, timeout: float) -> str | None:
    """One sentence for a failure huggingface_hub reports, or None for a bug of ours (re-raised as is)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):  # a ConnectionError: before the network case
        return OFFLINE
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return f"The Hub refused the token (HTTP {status}): check it has write access."
        return f"The Hub answered HTTP {status}: {_server_text(exc)}"
    if isinstance(exc, HFValidationError):
        return f"{repo_id!r} is not a valid Hub repo id (namespace/name of letters, digits, '-', '_', '.')."
    if isinstance(exc, (httpx2.HTTPError, OSError)):  # refused, DNS, timeouts, resets
        reason = network_reason(exc, endpoint, timeout)
        return (
            f"The Hugging Face Hub is unreachable from this worker ({reason}). "
            "The models stay registered here; push again later."
        )
    if isinstance(exc, ValueError):  # the card's metadata refused by validate-yaml, or an unreadable answer
        return f"The Hub did not take the push: {_truncate(' '.join(str(exc).split()))}"
    if isinstance(exc, RuntimeError):  # LFS / hf_xet uploads wrap their failures in RuntimeError
        return f"Uploading to the Hub failed: {_truncate(' '.join(str(exc).split())) or type(exc).__name__}"
    return None


def network_reason(exc: BaseException, endpoint: str | None, timeout: float) -> str:
    import httpx2

    from app.serving.remote_errors import exception_chain

    chain = exception_chain(exc)
    if any(isinstance(error, (httpx2.TimeoutException, TimeoutError)) for error in chain):
        return f"no answer within {timeout:g} s"
    if any(isinstance(error, socket.gaierror) for error in chain):
        from huggingface_hub import constants

        return f"DNS lookup failed for {urlsplit(endpoint or constants.ENDPOINT).hostname}"
    if any(isinstance(error, ConnectionRefusedError) for error in chain):
        return "connection refused"
    detail = next((str(error) for error in reversed(chain) if str(error)), type(exc).__name__)
    return _truncate(detail)


def _server_text(exc: Any) -> str:
    """The Hub's own words: huggingface_hub's parse of the error body and X-Error-Message, else the body."""
    text = exc.server_message or ""
    if not text:
        try:
            text = exc.response.text
        except Exception:  # a streamed answer that was never read
            text = ""
    return _truncate(" ".join(text.split())) or "no details"


def _truncate(text: str) -> str:
    return text if len(text) <= SERVER_TEXT_LIMIT else text[: SERVER_TEXT_LIMIT - 1] + "…"


# ----------------------------------------------------------------------------------------------------
# A time limit for this thread's requests on huggingface_hub's shared session.
#
# huggingface_hub closes and recreates that session after a connection error before it retries a preupload;
# a retry on the new session then runs without this limit, bounded only by the job's own timeout.

_REQUEST_TIMEOUT: ContextVar[float | None] = ContextVar("toolsmith_hub_push_timeout", default=None)
_HOOK_LOCK = threading.Lock()


def _apply_request_timeout(request: Any) -> None:
    seconds = _REQUEST_TIMEOUT.get()
    if seconds is not None:
        import httpx2

        request.extensions = {**request.extensions, "timeout": httpx2.Timeout(seconds).as_dict()}


@contextmanager
def _request_timeout(seconds: float) -> Iterator[None]:
    from huggingface_hub.utils import get_session

    session = get_session()  # recreated after fork or set_client_factory: install the hook each time
    with _HOOK_LOCK:
        hooks = session.event_hooks
        if _apply_request_timeout not in hooks["request"]:
            session.event_hooks = {**hooks, "request": [*hooks["request"], _apply_request_timeout]}
    token = _REQUEST_TIMEOUT.set(seconds)
    try:
        yield
    finally:
        _REQUEST_TIMEOUT.reset(token)
