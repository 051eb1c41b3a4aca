"""Turning remote-provider failures into one sentence a user can act on, without the API key.

openai, huggingface_hub, httpx / httpx2 and the URL guard each raise their own exceptions, often wrapped
in one another; `describe_error` walks the whole chain.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from app.serving.types import RemoteStatusError, ServingError

if TYPE_CHECKING:
    from app.serving.remote import RemoteEndpoint

SERVER_TEXT_LIMIT = 200  # characters of a server's error body shown to the user
NOT_OPENAI = "Is it an OpenAI-compatible endpoint? The URL usually ends in /v1."


def describe_error(exc: BaseException, endpoint: RemoteEndpoint | None = None) -> str:
    """One sentence a user can act on for any failure of openai, huggingface_hub, httpx or the URL guard."""
    message = _describe(exc, endpoint)
    if endpoint is not None and endpoint.api_key:
        message = mask_secret(message, endpoint.api_key)  # a server may echo the key in its error text
    return message


def serving_error(exc: BaseException, endpoint: RemoteEndpoint | None = None) -> ServingError:
    """`describe_error`'s sentence as the error to raise: a `RemoteStatusError` when the server answered
    with an HTTP status, so the API can tell the caller's mistakes from the server's."""
    message = describe_error(exc, endpoint)
    status = _status_code(exc)
    if status is None or any(isinstance(error, ServingError) for error in exception_chain(exc)):
        return ServingError(message)
    response = getattr(exc, "response", None)
    retry_after = response.headers.get("retry-after") if response is not None else None
    return RemoteStatusError(message, status, _error_code(exc), _short(retry_after))


def _error_code(exc: BaseException) -> str | None:
    """The server's own error code (OpenAI's "context_length_exceeded"), when it is a short identifier."""
    body = getattr(exc, "body", None)  # openai keeps the parsed JSON body here
    if body is None:
        try:
            body = json.loads(exc.response.text)  # type: ignore[attr-defined]
        except Exception:  # no response, an unread stream, or not JSON
            return None
    inner = body.get("error", body) if isinstance(body, dict) else body
    code = inner.get("code") if isinstance(inner, dict) else None
    return _short(code) if isinstance(code, str) and code.replace("_", "").isalnum() else None


def _short(value: Any, limit: int = 64) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable() else None


def mask_secret(text: str, secret: str, shortest: int = 10) -> str:
    """`text` with `secret` replaced by ***, and any start of it too: a server's echo cut short by
    truncation ("sk-proj-A1b2…") is still most of the key."""
    secret = secret.strip()
    if len(secret) < shortest:
        return text.replace(secret, "***") if secret else text
    head = secret[:shortest]
    parts, start = [], 0
    while (found := text.find(head, start)) != -1:
        length = shortest
        while length < len(secret) and found + length < len(text) and text[found + length] == secret[length]:
            length += 1
        parts.append(text[start:found] + "***")
        start = found + length
    masked = "".join(parts) + text[start:]
    # A key cut so short by truncation that fewer than `shortest` characters of it are left, at the end.
    body = masked.rstrip("….")
    for length in range(min(shortest, len(secret)) - 1, 3, -1):
        if body.endswith(secret[:length]):
            return body[:-length] + "***" + masked[len(body) :]
    return masked


def _describe(exc: BaseException, endpoint: RemoteEndpoint | None) -> str:
    import httpx
    import httpx2
    import openai
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError

    chain = exception_chain(exc)
    where = _where(chain, endpoint)
    for error in chain:  # the guard's own sentence wins, however deep a client wrapped it
        if isinstance(error, ServingError):
            return str(error)
    status = _status_code(exc)
    if status is not None:
        return _describe_status(status, server_text(exc), endpoint)
    timeouts = (
        openai.APITimeoutError,
        InferenceTimeoutError,
        httpx.TimeoutException,
        httpx2.TimeoutException,
    )
    if any(isinstance(error, (*timeouts, TimeoutError)) for error in chain):
        seconds = f"{endpoint.timeout_s:g} s" if endpoint else "the time limit"
        return f"No answer within {seconds} from {where}."
    if any(isinstance(error, socket.gaierror) for error in chain):
        return f"Could not resolve host {where.rsplit(':', 1)[0]} (DNS lookup failed)."
    if any(isinstance(error, ConnectionRefusedError) for error in chain):
        return f"Connection refused at {where} — is the server running?"
    certificate = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if certificate is not None:
        return f"TLS failed with {where}: {getattr(certificate, 'reason', None) or certificate}."
    if any(isinstance(error, (openai.APIResponseValidationError, json.JSONDecodeError)) for error in chain):
        source = endpoint.display_url if endpoint else where
        return f"The server's answer was not JSON from {source}. {NOT_OPENAI}"
    connection_errors = (openai.APIConnectionError, httpx.TransportError, httpx2.TransportError, OSError)
    if any(isinstance(error, connection_errors) for error in chain):
        detail = next((str(e) for e in reversed(chain) if str(e)), type(exc).__name__)
        return _sentence(f"Could not connect to {where}: {_truncate(detail)}")
    if isinstance(exc, (TextGenerationError, openai.APIError)):  # an error event inside the stream
        # openai keeps the event's error in .body, huggingface_hub in args[0]; either may be text or a dict.
        reported = getattr(exc, "body", None) or (exc.args[0] if exc.args else None)
        text = reported if isinstance(reported, str) else _json_error_message({"error": reported})
        return _sentence(f"The server reported an error: {_truncate(text or str(exc))}")
    if isinstance(exc, HfHubHTTPError):  # without a response (rare): huggingface_hub's own text
        return _truncate(str(exc))
    return f"{type(exc).__name__}: {_truncate(str(exc)) or 'no details'}"


def _describe_status(status: int, text: str, endpoint: RemoteEndpoint | None) -> str:
    said = f": {text}" if text else ""
    if status in (401, 403):
        if endpoint is not None and not endpoint.api_key:
            return _sentence(f"The server wants an API key (HTTP {status}){said}")
        return _sentence(f"The server refused the API key (HTTP {status}){said}")
    if status == 404:
        model = f"Model '{endpoint.model_id}' or the API path" if endpoint else "The model or API path"
        return _sentence(
            f"{model} not found (HTTP 404) at {endpoint.display_url if endpoint else 'the server'}{said}"
        )
    if status == 429:
        return _sentence(f"The server is rate limiting requests (HTTP 429){said}") + " Try again later."
    if status >= 500:
        return _sentence(f"The server failed (HTTP {status}){said}")
    return _sentence(f"The server rejected the request (HTTP {status}){said}")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes / contexts, outermost first (each once)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _status_code(exc: BaseException) -> int | None:
    import openai
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code
    return None


def server_text(exc: BaseException) -> str:
    """The server's own error text, short: the message of a JSON error body, else the body itself."""
    response = getattr(exc, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # a streamed response that was never read has no text to show
        text = ""
    try:
        text = _json_error_message(json.loads(text)) or text
    except ValueError:
        pass
    return _truncate(text or getattr(exc, "server_message", None) or "")


def _json_error_message(body: Any) -> str | None:
    """OpenAI: {"error": {"message": ...}}; TGI: {"error": "..."}; FastAPI: {"detail": "..."}."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error") or body.get("message") or body.get("detail")
    if isinstance(inner, dict):
        inner = inner.get("message") or inner.get("detail")
    return inner if isinstance(inner, str) else None


def _truncate(text: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(chain: list[BaseException], endpoint: RemoteEndpoint | None) -> str:
    """host:port of the failed request (a redirect may have moved it), else the endpoint's address."""
    for error in chain:
        try:
            url = str(error.request.url)  # type: ignore[attr-defined]
        except Exception:  # httpx raises RuntimeError when an exception carries no request
            continue
        if _host_port(url):
            return _host_port(url)
    if endpoint is not None and endpoint.base_url and _host_port(endpoint.base_url):
        return _host_port(endpoint.base_url)
    return endpoint.display_url if endpoint else "the server"


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    return f"[{parts.hostname}]:{port}" if ":" in parts.hostname else f"{parts.hostname}:{port}"


def mentions_key(exc: BaseException, endpoint: RemoteEndpoint) -> bool:
    """Whether an exception in the chain quotes the API key (some servers echo the Authorization header)."""
    key = endpoint.api_key
    if not key:
        return False
    for error in exception_chain(exc):
        response = getattr(error, "response", None)
        try:
            body = response.text if response is not None else ""
        except Exception:  # a streamed response never read has no text
            body = ""
        if mask_secret(str(error), key) != str(error) or mask_secret(str(body), key) != str(body):
            return True
    return False
